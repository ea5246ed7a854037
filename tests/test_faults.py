"""The fault matrix: every command that reads a file, fed what users feed it by mistake.

Each case must end in one `error:` line on stderr with the documented exit status (2 = the request is
wrong, 1 = a valid request failed), nothing half-written and nothing overwritten. Inputs that are odd but
valid (one frame, odd sizes, 1 and 120 fps) must work. Process-level faults (stdin closed early, stdout
closed by the reader, a full disk) run the installed console script in a subprocess.
"""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import M, PROMPT, assert_one_error, cli, ok, read_back, snapshot, write_clip

# every command that takes an input file, with the options that make it valid otherwise
VIDEO_COMMANDS = {
    "extend": ["-p", "x", "--seconds", "1"],
    "stylize": ["--style", "x"],
    "inpaint": ["-p", "x", "--box", "8,8,24,24"],
    "outpaint": ["-p", "x", "--pad", "16,0,16,0"],
}
ALL_COMMANDS = {"animate": ["-p", "x"], **VIDEO_COMMANDS}


def _valid_input(cwd: Path, command: str) -> Path:
    if command == "animate":
        p = cwd / "in.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(p)
        return p
    return write_clip(cwd / "in.mp4", T=9, H=48, W=64, fps=8)


def _bad_input(cwd: Path, command: str, kind: str) -> Path:
    good = _valid_input(cwd, command)
    data = good.read_bytes()
    bad = cwd / f"bad{good.suffix}"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) // 3])
    elif kind == "corrupt":  # the right magic bytes, then noise
        bad.write_bytes(data[:16] + np.random.default_rng(1).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    elif kind == "not a video":
        bad.write_text("name,colour\ncircle,red\n" * 50)
    elif kind == "a folder":
        bad = cwd / "folder.mp4"
        bad.mkdir()
    good.unlink()
    return bad


@pytest.mark.parametrize("kind", ["empty", "truncated", "corrupt", "not a video", "a folder"])
@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))
def test_bad_input_files(micro, cwd, command, kind):
    bad = _bad_input(cwd, command, kind)
    before = snapshot(cwd)
    r = cli(command, bad.name, *ALL_COMMANDS[command], *M(micro), "-o", "out.mp4")
    assert r.exit_code in (1, 2), (r.exit_code, r.stderr)
    assert_one_error(r, r.exit_code, bad.name)
    assert snapshot(cwd) == before


@pytest.mark.parametrize("command", sorted(VIDEO_COMMANDS))
def test_zero_frame_video_is_refused(micro, cwd, command):
    import imageio_ffmpeg

    p = cwd / "zero.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=size=64x48:rate=8",
                    "-frames:v", "0", "-c:v", "libx264", str(p)], check=True, capture_output=True, timeout=60)  # fmt: skip
    assert_one_error(cli(command, "zero.mp4", *VIDEO_COMMANDS[command], *M(micro), "-o", "out.mp4"), 1, "no video frames")
    assert snapshot(cwd) == ["zero.mp4"]


def test_a_video_where_an_image_is_expected(micro, cwd):
    write_clip(cwd / "v.mp4", T=3, H=32, W=32, fps=8)
    assert_one_error(cli("animate", "v.mp4", *ALL_COMMANDS["animate"], *M(micro), "-o", "out.mp4"), 2, "image")
    assert snapshot(cwd) == ["v.mp4"]


def _gif(path: Path, frames: int, h: int, w: int, fps: float) -> Path:
    rng = np.random.default_rng(frames)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for _ in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    return path


@pytest.mark.parametrize("command", sorted(VIDEO_COMMANDS))
@pytest.mark.parametrize("frames, h, w, fps", [(1, 48, 64, 8), (4, 17, 33, 8), (3, 40, 40, 1), (40, 36, 52, 50)],
                         ids=["one-frame", "odd-size", "1fps", "50fps"])  # fmt: skip
def test_odd_but_valid_inputs_work(micro, cwd, command, frames, h, w, fps):
    """One frame, odd sizes, very low and high frame rates (a GIF stores 50 fps at most; 120 fps is the
    MP4 case below). stylize keeps the input's duration, extend adds one second to it, inpaint and
    outpaint keep the input's own size (outpaint adds the padding); all write at the model's 8 fps."""
    import json

    _gif(cwd / "in.gif", frames, h, w, fps)
    r = ok(cli(command, "in.gif", *VIDEO_COMMANDS[command], *M(micro), "-o", "out.gif", "--json"))
    rec = json.loads(r.stdout)
    seconds = frames / fps
    expected = {"stylize": (max(1, round(seconds * 8)), 128, 128), "extend": (max(1, round(seconds * 8)) + 8, 128, 128),
                "inpaint": (max(1, round(seconds * 8)), h, w), "outpaint": (max(1, round(seconds * 8)), h, w + 32)}[command]  # fmt: skip
    assert (rec["frames"], rec["height"], rec["width"]) == pytest.approx(expected, abs=1), rec
    assert rec["fps"] == 8
    assert read_back(cwd / "out.gif")[0].shape[1:] == (expected[1], expected[2], 3)


def test_120_fps_and_huge_inputs(micro, cwd):
    write_clip(cwd / "fast.mp4", T=60, H=48, W=64, fps=120)  # 0.5 s
    ok(cli("stylize", "fast.mp4", "--style", "x", *M(micro), "-o", "out.gif", "-q"))
    assert read_back(cwd / "out.gif")[0].shape[0] == 4
    big = np.zeros((8000, 8000, 3), np.uint8)
    big[3000:5000, 3000:5000] = (200, 30, 30)
    Image.fromarray(big).save(cwd / "big.png", compress_level=1)
    ok(cli("animate", "big.png", "-p", "x", *M(micro), "--frames", "5", "-o", "a.gif", "-q"))  # a still of any size is read reduced
    assert read_back(cwd / "a.gif")[0].shape == (5, 128, 128, 3)


def test_truncated_and_foreign_checkpoints(micro, cwd, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-ckpt")
    data = Path(micro[1]).read_bytes()
    (d / "half.safetensors").write_bytes(data[: len(data) // 2])
    (d / "junk.safetensors").write_bytes(b"\x00" * 64)
    for name in ("half.safetensors", "junk.safetensors"):
        assert_one_error(cli("generate", PROMPT, "--preset", micro[0], "--checkpoint", d / name, "--frames", "2"), 1, name)
    assert snapshot(cwd) == []


# ----------------------------------------------------------------------------- process-level faults


def _exe() -> str:
    return str(Path(sys.executable).with_name("videopoet"))


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_stdin_closed_early(micro, tmp_path):
    """Nothing on stdin, or a stream that stops half-way: one error line, no output file."""
    args = [_exe(), "stylize", "-", "--style", "x", *M(micro), "-o", "out.mp4"]
    r = subprocess.run(args, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "stdin is empty" in r.stderr and "Traceback" not in r.stderr
    half = write_clip(tmp_path / "in.mp4", T=9, H=48, W=64, fps=8).read_bytes()[:1500]
    (tmp_path / "in.mp4").unlink()
    r = subprocess.run(args, cwd=tmp_path, env=_env(), input=half, capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 1 and err.count("error:") == 1 and "stdin" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_stdout_closed_by_the_reader(micro, tmp_path):
    """`videopoet generate -o - | head -c 100`: the reader leaves early; one quiet line, exit 1."""
    p = subprocess.Popen([_exe(), "generate", PROMPT, *M(micro), "--frames", "33", "--size", "512", "-o", "-", "--format", "gif"],
                         cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    head = p.stdout.read(100)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1, err
    assert head[:6] in (b"GIF89a", b"GIF87a")
    assert "output pipe closed" in err and err.count("error:") == 1 and "Traceback" not in err
    assert sorted(x.name for x in tmp_path.iterdir()) == []


def _small_disk() -> None:
    """In the child: files may grow to 40 kB at most (what a full disk looks like to a writer)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_a_full_disk_leaves_nothing(micro, tmp_path):
    (tmp_path / "keep.mp4").write_bytes(b"old")
    args = [_exe(), "generate", PROMPT, *M(micro), "--frames", "17", "--size", "512", "-o"]
    r = subprocess.run(args + ["big.mp4"], cwd=tmp_path, env=_env(), preexec_fn=_small_disk, capture_output=True, text=True, timeout=180)
    assert r.returncode == 1 and "could not write big.mp4" in r.stderr and r.stderr.count("error:") == 1, r.stderr
    r = subprocess.run(args + ["keep.mp4", "--overwrite"], cwd=tmp_path, env=_env(), preexec_fn=_small_disk, capture_output=True, text=True, timeout=180)
    assert r.returncode == 1 and "could not write keep.mp4" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]  # no temp file, no lock, the old file kept
    assert (tmp_path / "keep.mp4").read_bytes() == b"old"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_device(micro, tmp_path):
    with open("/dev/full", "wb") as full:
        r = subprocess.run([_exe(), "generate", PROMPT, *M(micro), "--frames", "5", "-o", "-", "--format", "mp4"],
                           cwd=tmp_path, env=_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("extra, says", [([], "--init"), (["--init", "missing.safetensors"], "not found")])
def test_train_reference_needs_an_existing_tokenizer(tmp_path, extra, says):
    r = cli("train", "tokenizer", "--reference", "--data", "world:2", "--out", tmp_path / "ref", *extra)
    assert_one_error(r, 2, says)
    assert not (tmp_path / "ref").exists()
