"""videopoet_cli.files: the command line's file policy (paths, --format, `-`, --overwrite, placement, names).

The plain readers and encoders underneath are tested in test_video_io.py. Small clips: runs in seconds.
"""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import video_io as V
from model.errors import InvalidInput, VideoPoetError
from videopoet_cli import files as F

ROOT = Path(__file__).resolve().parent.parent


def clip(T=9, H=32, W=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8)
    return np.repeat(base, T, 0)


def names(folder):
    return sorted(os.listdir(folder))


class FakeStd:
    def __init__(self, data=b""):
        self.buffer = io.BytesIO(data)


# ------------------------------------------------------------------ layering


def test_the_core_knows_no_command_line():
    for path in (ROOT / "model").rglob("*.py"):
        assert not re.search(r"(?m)^\s*(from|import)\s+videopoet_cli", path.read_text()), f"{path} imports videopoet_cli"
    text = (ROOT / "model" / "video_io.py").read_text()
    for word in ("--format", "--overwrite", "pass --", "STDIO", "sys.stdin", "sys.stdout"):
        assert word not in text, word


def test_import_is_light():
    code = "import sys, videopoet_cli.files; print(sorted(m for m in ('numpy', 'torch', 'cv2', 'imageio', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert F.OUTPUT_KINDS == V.OUTPUT_KINDS


# ------------------------------------------------------------------ output checks


def test_output_kind(tmp_path):
    assert F.output_kind("x.mp4", None) == "mp4"
    assert F.output_kind("x.MP4", "mp4") == "mp4"
    assert F.output_kind("x.gif", None) == "gif"
    assert F.output_kind("frames/", None) == "png"
    with pytest.raises(InvalidInput, match="no extension"):
        F.output_kind("frames", None)
    assert F.output_kind("frames", "png") == "png" and F.output_kind("clip", "mp4") == "mp4"
    assert F.output_kind(str(tmp_path), "png") == "png"
    (tmp_path / "dir.mp4").mkdir()
    assert F.output_kind(str(tmp_path / "dir.mp4"), None) == "png"
    assert F.output_kind("-", "gif") == "gif"
    for fmt in (None, "png"):
        with pytest.raises(InvalidInput, match="stdout needs --format mp4 or gif"):
            F.output_kind("-", fmt)
    with pytest.raises(InvalidInput, match=r"'\.avi'.*\.mp4, \.gif"):
        F.output_kind("x.avi", None)
    with pytest.raises(InvalidInput, match="contradicts"):
        F.output_kind("x.mp4", "gif")
    with pytest.raises(InvalidInput, match="contradicts"):
        F.output_kind("frames/", "mp4")
    with pytest.raises(InvalidInput, match="unknown format"):
        F.output_kind("x.mp4", "avi")


def test_check_output(tmp_path):
    missing = tmp_path / "nope" / "a.mp4"
    with pytest.raises(InvalidInput, match="output folder does not exist: .*nope"):
        F.check_output(str(missing), "mp4", True)
    with pytest.raises(InvalidInput, match="output folder does not exist"):
        F.write_video(clip(2), str(missing), 8, "mp4", overwrite=True)
    F.check_output("-", "mp4", False)
    F.check_output(str(tmp_path / "new.gif"), "gif", False)
    d = tmp_path / "frames"
    d.mkdir()
    F.check_output(str(d), "png", False)  # empty folder is fine
    (d / "frame_0000.png").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="not empty; pass --overwrite"):
        F.check_output(str(d), "png", False)
    F.check_output(str(d), "png", True)
    with pytest.raises(InvalidInput, match="is a folder"):
        F.check_output(str(d), "mp4", True)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="exists and is not a folder"):
        F.check_output(str(tmp_path / "file"), "png", True)
    assert names(tmp_path) == ["file", "frames"]  # the writability probe left nothing


def test_refuse_existing(tmp_path):
    F.refuse_existing(tmp_path / "new.json", False)
    (tmp_path / "old.json").write_text("{}")
    F.refuse_existing(tmp_path / "old.json", True)
    with pytest.raises(InvalidInput, match="old.json exists; pass --overwrite to replace it"):
        F.refuse_existing(tmp_path / "old.json", False)


# ------------------------------------------------------------------ writing


def test_existing_output_needs_overwrite(tmp_path):
    p = tmp_path / "a.mp4"
    p.write_bytes(b"precious")
    with pytest.raises(InvalidInput, match="exists; pass --overwrite"):
        F.check_output(str(p), "mp4", False)
    with pytest.raises(InvalidInput, match="exists; pass --overwrite"):
        F.write_video(clip(4), str(p), 8, "mp4")
    assert p.read_bytes() == b"precious"
    F.write_video(clip(4), str(p), 8, "mp4", overwrite=True)
    assert len(V.read_video(str(p))[0]) == 4
    assert names(tmp_path) == ["a.mp4"]


def test_written_file_has_normal_permissions_and_provenance(tmp_path):
    p = tmp_path / "a.gif"
    F.write_video(clip(3), str(p), 8, "gif", provenance={"seed": 7})
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask
    assert V.read_provenance(str(p)) == {"seed": 7}


def test_a_name_taken_while_encoding_is_not_replaced(tmp_path, monkeypatch):
    p = tmp_path / "clip.gif"
    real = V._encode_gif

    def slow(frames, tmp, fps, note=""):  # another process writes the name while this one encodes
        real(frames, tmp, fps, note)
        p.write_bytes(b"someone else's")

    monkeypatch.setattr(V, "_encode_gif", slow)
    with pytest.raises(InvalidInput, match="appeared while this clip was made .*pass --overwrite"):
        F.write_video(clip(3), str(p), 8, "gif")
    assert p.read_bytes() == b"someone else's" and names(tmp_path) == ["clip.gif"]
    F.write_video(clip(3), str(p), 8, "gif", overwrite=True)  # with --overwrite it is replaced
    assert len(V.read_video(str(p))[0]) == 3 and names(tmp_path) == ["clip.gif"]


def test_failures_leave_nothing_and_name_the_target(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(V, "_encode_mp4", boom)
    with pytest.raises(VideoPoetError, match=r"could not write .*a\.mp4: No space left on device"):
        F.write_video(clip(2), str(tmp_path / "a.mp4"), 8, "mp4")
    assert names(tmp_path) == []


def test_png_folder_overwrite_replaces_frames(tmp_path):
    d = tmp_path / "frames"
    F.write_video(clip(20, seed=5), str(d), 8, "png")
    (d / "notes.txt").write_text("keep me")
    new = clip(7)
    with pytest.raises(InvalidInput, match="not empty; pass --overwrite"):
        F.write_video(new, str(d), 8, "png")
    assert len([n for n in names(d) if n.endswith(".png")]) == 20
    F.write_video(new, str(d), 8, "png", overwrite=True)
    assert names(d) == [f"frame_{i:04d}.png" for i in range(7)] + ["notes.txt"]
    assert np.array_equal(V.read_video(str(d))[0], new)
    assert names(tmp_path) == ["frames"]


@pytest.mark.parametrize("kind", ["mp4", "gif"])
def test_stdout_then_stdin(monkeypatch, kind):
    f = clip(9, 64, 64)
    fake_out = FakeStd()
    monkeypatch.setattr(sys, "stdout", fake_out)
    F.write_video(f, "-", 8, kind, provenance={"seed": 1})
    data = fake_out.buffer.getvalue()
    assert (data[:6] == b"GIF89a") if kind == "gif" else (data[4:8] == b"ftyp")
    monkeypatch.setattr(sys, "stdin", FakeStd(data))
    g, fps = F.read_video("-")
    assert g.shape == f.shape and abs(fps - 8) < 0.01
    with pytest.raises(InvalidInput, match="stdout needs --format mp4 or gif"):
        F.write_video(f, "-", 8, "png")


def test_stdin_image_and_garbage(monkeypatch):
    buf = io.BytesIO()
    Image.fromarray(clip(1, 16, 24)[0]).save(buf, format="PNG")
    monkeypatch.setattr(sys, "stdin", FakeStd(buf.getvalue()))
    assert F.read_image("-").shape == (16, 24, 3)
    monkeypatch.setattr(sys, "stdin", FakeStd(b""))
    with pytest.raises(VideoPoetError, match="stdin is empty"):
        F.read_video("-")
    monkeypatch.setattr(sys, "stdin", FakeStd(b"hello, not a video"))
    with pytest.raises(VideoPoetError, match="stdin is not a recognised"):
        F.read_video("-")
    cut = io.BytesIO()
    Image.fromarray(clip(1, 64, 64)[0]).save(cut, format="PNG")
    monkeypatch.setattr(sys, "stdin", FakeStd(cut.getvalue()[:200]))
    with pytest.raises(VideoPoetError, match="cannot decode stdin: the file is truncated or corrupt"):
        F.read_image("-")


# ------------------------------------------------------------------ names and plans


def test_names():
    assert F.slug("A Red circle, moving RIGHT!") == "a-red-circle-moving-right"
    assert F.slug("🎉") == "video"
    assert F.input_stem("clips/My Clip.mp4", "make it blue")("ignored") == "my-clip-make-it-blue"
    assert F.input_stem("-", "make it blue")("ignored") == "make-it-blue"
    assert F.display_name("-") == "stdin" and F.display_name("a.mp4") == "a.mp4"


def test_plan_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        (tmp_path / "x_seed0.mp4").write_bytes(b"old")
        assert F.plan_outputs(None, None, False, ["x_seed0", "x_seed1"]) == ("mp4", ["x_seed0-2.mp4", "x_seed1.mp4"])
        assert F.plan_outputs("-", "gif", False, ["x"]) == ("gif", ["-"])
        with pytest.raises(InvalidInput, match="stdout takes one clip, but this makes 2"):
            F.plan_outputs("-", "gif", False, ["x", "y"])
        assert F.plan_outputs("c.gif", None, False, ["x", "y"]) == ("gif", ["c-1.gif", "c-2.gif"])
        assert F.plan_outputs("new/", None, False, ["x"]) == ("mp4", [os.path.join("new", "x.mp4")])
        assert not (tmp_path / "new").exists()  # made when the first clip is written
        F.make_parent(os.path.join("new", "x.mp4"), "new/", None, "mp4", 1)
        assert (tmp_path / "new").is_dir()
        with pytest.raises(InvalidInput, match="output folder does not exist"):
            F.plan_outputs("a/b/", None, False, ["x"])
        with pytest.raises(InvalidInput, match="x_seed0.mp4 exists; pass --overwrite"):
            F.plan_outputs("x_seed0.mp4", None, False, ["x"])
        # every planned name is reserved: another run's plan steps past it
        locks = sorted(n for n in names(tmp_path) if n.endswith(".videopoet-lock"))
        assert ".x_seed0-2.mp4.videopoet-lock" in locks and ".c-1.gif.videopoet-lock" in locks
    finally:
        F.release_reservations()
    assert not [n for n in names(tmp_path) if n.endswith(".videopoet-lock")]
