"""model.video_io: round trips, atomic writes, clear errors, frame ops. Small clips: runs in seconds.

The command line's file policy (`-`, --overwrite, --format, placement) is tested in test_files.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from model import video_io as V
from model.errors import InvalidInput, VideoPoetError


def clip(T=17, H=64, W=64, seed=0):
    """A coloured square moving right over a smooth gradient background."""
    y, x = np.mgrid[0:H, 0:W]
    bg = np.stack([40 + 120 * x / W, 60 + 100 * y / H, np.full((H, W), 90.0)], -1)
    out = np.empty((T, H, W, 3), np.uint8)
    s = max(8, H // 4)
    for t in range(T):
        f = bg.copy()
        x0 = (2 * t + seed) % (W - s)
        f[H // 3:H // 3 + s, x0:x0 + s] = (230, 40, 30)
        out[t] = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return out


def mae(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def files(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("size", [64, 128])
def test_mp4_round_trip(tmp_path, size):
    f = clip(17, size, size)
    p = str(tmp_path / "a.mp4")
    V.write_video(f, p, 8, "mp4")
    g, fps = V.read_video(p)
    assert g.dtype == np.uint8 and g.shape == f.shape
    assert abs(fps - 8) < 0.01
    assert mae(g, f) < 8
    assert files(tmp_path) == ["a.mp4"]  # no temp file left behind


def test_mp4_non_square_and_fractional_fps(tmp_path):
    f = clip(12, 48, 80)
    p = str(tmp_path / "b.mp4")
    V.write_video(f, p, 24000 / 1001, "mp4")
    g, fps = V.read_video(p)
    assert g.shape == f.shape
    assert abs(fps - 24000 / 1001) < 0.01
    assert mae(g, f) < 8


def test_mp4_odd_size_refused(tmp_path):
    with pytest.raises(InvalidInput, match="even"):
        V.write_video(clip(3, 63, 64), str(tmp_path / "odd.mp4"), 8, "mp4")
    assert files(tmp_path) == []


def test_gif_round_trip_keeps_frame_count_and_fps(tmp_path):
    f = clip(17, 64, 64)
    p = str(tmp_path / "a.gif")
    V.write_video(f, p, 8, "gif")
    with Image.open(p) as im:  # GIF stores whole centiseconds: 12.5 cs frames alternate 13 and 12 cs
        assert im.info["loop"] == 0
        delays = []
        for i in range(im.n_frames):
            im.seek(i)
            delays.append(im.info["duration"])
    assert delays[:4] == [130, 120, 130, 120] and sum(delays) == 17 * 125 + 5  # 8 fps exactly, to the rounding of the last frame
    g, fps = V.read_video(p)
    assert g.shape == f.shape
    assert fps == 8.0
    assert mae(g, f) < 4


def test_gif_identical_frames_survive_pillow_merging(tmp_path):
    f = clip(6, 32, 32)
    f = np.concatenate([f[:2], f[2:3], f[2:3], f[2:3], f[3:]])  # 3 identical frames in a row
    p = str(tmp_path / "dup.gif")
    V.write_video(f, p, 10, "gif")
    with Image.open(p) as im:
        assert im.n_frames == 6  # Pillow merged the duplicates into one longer frame
    g, fps = V.read_video(p)
    assert len(g) == 8 and fps == 10.0
    assert mae(g, f) < 4
    still = np.repeat(f[:1], 5, 0)  # all identical: Pillow writes a single image
    V.write_video(still, str(tmp_path / "still.gif"), 8, "gif")
    g, fps = V.read_video(str(tmp_path / "still.gif"))
    assert len(g) == 5 and fps == 8.0


def test_foreign_gif_timing(tmp_path):
    f = clip(4, 32, 32)
    ims = [Image.fromarray(x) for x in f]
    p = str(tmp_path / "plain.gif")  # no videopoet comment: timing from the delays alone
    ims[0].save(p, save_all=True, append_images=ims[1:], duration=130, loop=0)
    g, fps = V.read_video(p)
    assert len(g) == 4 and fps == 8.0  # 130 ms snaps back to 8 fps, not 7.69
    q = str(tmp_path / "var.gif")
    ims[0].save(q, save_all=True, append_images=ims[1:], duration=[100, 200, 100, 300], loop=0)
    g, fps = V.read_video(q)
    assert fps == 10.0 and len(g) == 7  # long frames repeated: constant rate, same duration
    assert (g[1] == g[2]).all() and (g[4] == g[6]).all()
    r = str(tmp_path / "odd.gif")
    ims[0].save(r, save_all=True, append_images=ims[1:], duration=[100, 150, 100, 170], loop=0)
    g, fps = V.read_video(r)
    assert len(g) == 4 and abs(fps - 1000 / 130) < 1e-6  # irregular: mean delay


def test_png_folder_round_trip_exact(tmp_path):
    f = clip(17, 64, 48)
    out = str(tmp_path / "frames") + "/"
    V.write_video(f, out, 8, "png")
    names = files(tmp_path / "frames")
    assert names[0] == "frame_0000.png" and len(names) == 17
    g, fps = V.read_video(str(tmp_path / "frames"))
    assert fps == 0.0
    assert np.array_equal(g, f)
    assert files(tmp_path) == ["frames"]


def test_png_folder_overwrite_replaces_frames(tmp_path):
    d = tmp_path / "frames"
    V.write_video(clip(20, 32, 32, seed=5), str(d), 8, "png")
    (d / "notes.txt").write_text("keep me")
    new = clip(7, 32, 32)
    with pytest.raises(InvalidInput, match="exists; not replaced"):
        V.write_video(new, str(d), 8, "png")
    assert len([n for n in files(d) if n.endswith(".png")]) == 20
    V.write_video(new, str(d), 8, "png", overwrite=True)
    assert files(d) == [f"frame_{i:04d}.png" for i in range(7)] + ["notes.txt"]
    assert np.array_equal(V.read_video(str(d))[0], new)
    assert files(tmp_path) == ["frames"]


def test_no_standard_streams_here(tmp_path, monkeypatch):
    """`-` is the command line's (videopoet_cli.files): for model.video_io it is just a file name."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VideoPoetError, match="file not found: -"):
        V.read_video("-")
    V.write_video(clip(3, 16, 16), "-", 8, "gif")
    assert files(tmp_path) == ["-"] and len(V.read_video("-")[0]) == 3  # no suffix: read by its magic bytes


def test_read_with_a_display_name(tmp_path):
    p = tmp_path / "spooled.tmp"
    p.write_bytes(b"hello, not a video")
    with pytest.raises(VideoPoetError, match="not a video or image: the-input "):
        V.read_video(str(p), name="the-input")
    p.write_bytes(b"")
    with pytest.raises(VideoPoetError, match="file is empty: the-input"):
        V.read_image(str(p), name="the-input")


# ------------------------------------------------------------------ atomic writes


def test_mp4_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    """An ffmpeg that writes part of the file, then fails (a full disk looks like this): the error carries
    ffmpeg's own reason, and neither the partial file nor a temp file is left."""
    import imageio_ffmpeg

    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor last; do :; done\nhead -c 5000 > "$last"\n'
                    'echo "[mp4 @ 0x55] disk on fire" >&2\nexit 1\n')  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VideoPoetError, match="could not write .*a.mp4: ffmpeg could not encode the video: disk on fire"):
        V.write_video(clip(10), str(out / "a.mp4"), 8, "mp4")
    assert files(out) == []


def test_gif_interrupt_leaves_old_file_intact(tmp_path, monkeypatch):
    p = tmp_path / "a.gif"
    p.write_bytes(b"old contents")
    calls = {"n": 0}
    real = Image.fromarray

    def fromarray(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(Image, "fromarray", fromarray)
    with pytest.raises(KeyboardInterrupt):
        V.write_video(clip(10), str(p), 8, "gif", overwrite=True)
    assert files(tmp_path) == ["a.gif"] and p.read_bytes() == b"old contents"


def test_png_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = Image.Image.save

    def save(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("no space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(VideoPoetError, match="could not write .*frames: no space left"):
        V.write_video(clip(10), str(tmp_path / "frames"), 8, "png")
    assert files(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path):
    p = tmp_path / "a.mp4"
    p.write_bytes(b"precious")
    with pytest.raises(InvalidInput, match="exists; not replaced") as e:
        V.write_video(clip(4), str(p), 8, "mp4")
    assert "--" not in str(e.value)  # no command-line flags in the core's messages
    assert p.read_bytes() == b"precious"
    V.write_video(clip(4), str(p), 8, "mp4", overwrite=True)
    assert len(V.read_video(str(p))[0]) == 4
    assert files(tmp_path) == ["a.mp4"]
    with pytest.raises(VideoPoetError, match="could not write .*nope.*No such file"):
        V.write_video(clip(2), str(tmp_path / "nope" / "a.mp4"), 8, "mp4", overwrite=True)


def test_encode_video_writes_where_it_is_told(tmp_path):
    f = clip(5, 32, 32)
    V.encode_video(f, str(tmp_path / "x.tmp"), 8, "gif", {"seed": 3}, name="clip.gif")
    assert V.read_provenance(str(tmp_path / "x.tmp")) == {"seed": 3}
    V.encode_video(f, str(tmp_path / "frames.tmp"), 8, "png")
    assert files(tmp_path / "frames.tmp") == [f"frame_{i:04d}.png" for i in range(5)]
    with pytest.raises(InvalidInput, match="even width and height, got 31x32: clip.mp4"):
        V.encode_video(clip(2, 32, 31), str(tmp_path / "y.tmp"), 8, "mp4", name="clip.mp4")
    with pytest.raises(InvalidInput, match="frame rate must be positive"):
        V.encode_video(f, str(tmp_path / "y.tmp"), 0, "gif")
    with pytest.raises(ValueError, match="unknown output kind"):
        V.encode_video(f, str(tmp_path / "y.tmp"), 8, "avi")
    assert sorted(files(tmp_path)) == ["frames.tmp", "x.tmp"]


def test_written_file_has_normal_permissions(tmp_path):
    p = tmp_path / "a.gif"
    V.write_video(clip(3), str(p), 8, "gif")
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------ read errors


def test_read_errors(tmp_path):
    with pytest.raises(VideoPoetError, match="file not found: .*missing.mp4"):
        V.read_video(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoPoetError, match="file is empty"):
        V.read_video(str(tmp_path / "empty.mp4"))
    (tmp_path / "x.mp4").write_text("this is just some text, honestly")
    with pytest.raises(VideoPoetError, match="not a video") as e:
        V.read_video(str(tmp_path / "x.mp4"))
    assert type(e.value) is VideoPoetError and "\n" not in str(e.value)
    (tmp_path / "notes.txt").write_text("text")
    with pytest.raises(VideoPoetError, match="not a video or image: .*notes.txt"):
        V.read_video(str(tmp_path / "notes.txt"))
    (tmp_path / "x.png").write_text("not a png")
    with pytest.raises(VideoPoetError, match="not a video or image"):
        V.read_video(str(tmp_path / "x.png"))


@pytest.mark.parametrize("kind", ["mp4", "gif", "png"])
def test_truncated_file(tmp_path, kind):
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    if kind == "png":
        p = tmp_path / "a.png"
        Image.fromarray(f[0]).save(p)
    else:
        p = tmp_path / f"a.{kind}"
        V.write_video(f, str(p), 8, kind)
    data = p.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoPoetError, match="truncated or corrupt") as e:
        V.read_video(str(cut))
    assert "\n" not in str(e.value) and "cut." in str(e.value)


def test_zero_frame_inputs(tmp_path):
    import imageio_ffmpeg

    p = tmp_path / "zero.mp4"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=size=64x64:rate=8",
           "-frames:v", "0", "-c:v", "libx264", str(p)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    assert p.stat().st_size > 0
    with pytest.raises(VideoPoetError, match="no video frames in .*zero.mp4"):
        V.read_video(str(p))
    (tmp_path / "empty_frames").mkdir()
    with pytest.raises(VideoPoetError, match="no frames"):
        V.read_video(str(tmp_path / "empty_frames"))


def test_too_large_and_max_frames(tmp_path):
    p = str(tmp_path / "a.mp4")
    V.write_video(clip(20, 64, 64), p, 8, "mp4")
    with pytest.raises(InvalidInput, match="video too large"):
        V.read_video(p, max_pixels=32 * 32)
    with pytest.raises(InvalidInput, match="video too large: .*20 frames"):
        V.read_video(p, max_bytes=10 * 64 * 64 * 3)
    g, fps = V.read_video(p, max_frames=5, max_bytes=10 * 64 * 64 * 3)  # only 5 are decoded
    assert len(g) == 5 and fps == 8.0
    q = str(tmp_path / "a.gif")
    V.write_video(clip(20, 32, 32), q, 8, "gif")
    g, fps = V.read_video(q, max_frames=6)
    assert len(g) == 6 and fps == 8.0 and mae(g, clip(6, 32, 32)) < 4
    with pytest.raises(InvalidInput, match="video too large"):
        V.read_video(q, max_bytes=10 * 32 * 32 * 3)


# ------------------------------------------------------------------ images


def test_images_and_colour_modes(tmp_path):
    rgb = clip(1, 20, 30)[0]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    g, fps = V.read_video(str(tmp_path / "a.png"))
    assert g.shape == (1, 20, 30, 3) and fps == 0.0 and np.array_equal(g[0], rgb)
    assert mae(V.read_image(str(tmp_path / "a.jpg")), rgb) < 4
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    grey = V.read_image(str(tmp_path / "grey.png"))
    assert grey.shape == (20, 30, 3) and np.array_equal(grey[..., 1], rgb[..., 0])
    rgba = np.dstack([rgb, np.full((20, 30), 255, np.uint8)])
    rgba[:, :10, 3] = 0  # transparent left third -> black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = V.read_image(str(tmp_path / "rgba.png"))
    assert out.shape == (20, 30, 3) and (out[:, :10] == 0).all() and np.array_equal(out[:, 10:], rgb[:, 10:])
    assert V.is_image_path("x.PNG") and V.is_image_path("a/b.jpeg") and not V.is_image_path("x.gif")
    assert not V.is_image_path("x.mp4")


def test_read_image_rejects_videos(tmp_path):
    p = str(tmp_path / "a.mp4")
    V.write_video(clip(4), p, 8, "mp4")
    with pytest.raises(InvalidInput, match="is a video; give an image"):
        V.read_image(p)
    q = str(tmp_path / "a.gif")
    V.write_video(clip(4), q, 8, "gif")
    with pytest.raises(InvalidInput, match="give an image"):
        V.read_image(q)
    (tmp_path / "t.jpg").write_text("words")
    with pytest.raises(VideoPoetError) as e:
        V.read_image(str(tmp_path / "t.jpg"))
    assert type(e.value) is VideoPoetError


# ------------------------------------------------------------------ frame ops


def test_resample_fps():
    f = np.arange(48, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    g = V.resample_fps(f, 24, 8)
    assert len(g) == 16
    assert list(g[:, 0, 0, 0]) == [3 * j + 1 for j in range(16)]  # the middle frame of each 3
    up = V.resample_fps(f[:4], 8, 24)
    assert list(up[:, 0, 0, 0]) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len(V.resample_fps(f[:17], 7.69, 8)) == 18
    assert np.array_equal(V.resample_fps(f[:3], 0.0, 8), f[:3])  # still image / no timing: unchanged
    assert np.array_equal(V.resample_fps(f, 24, 24), f)


def test_center_crop_resize():
    f = np.zeros((2, 60, 100, 3), np.uint8)
    f[:, :, :20] = 255  # left and right bands fall outside the centre square
    f[:, :, 80:] = 255
    f[:, :, 20:80, 1] = 100
    g = V.center_crop_resize(f, 64)
    assert g.shape == (2, 64, 64, 3) and g.dtype == np.uint8
    assert (g[..., 0] == 0).all() and (g[..., 1] == 100).all()
    assert V.center_crop_resize(f, 30).shape == (2, 30, 30, 3)
    assert V.center_crop_resize(f, 60).shape == (2, 60, 60, 3)


def test_upscale():
    f = clip(3, 64, 64)
    g = V.upscale(f, 128)
    assert g.shape == (3, 128, 128, 3)
    assert np.array_equal(g[:, ::2, ::2], f) and np.array_equal(g[:, 1::2, 1::2], f)
    assert np.array_equal(g[:, 0::2, 1::2], f)
    h = V.upscale(f, 96)
    assert h.shape == (3, 96, 96, 3) and h.dtype == np.uint8
    assert mae(V.center_crop_resize(h, 64), f) < 6
    assert np.array_equal(V.upscale(f, 64), f)


def test_tensor_conversion():
    import torch

    f = clip(5, 16, 16)
    t = V.from_uint8(f)
    assert t.dtype == torch.float32 and t.shape == (5, 3, 16, 16)
    assert float(t.min()) >= -1 and float(t.max()) <= 1
    assert np.array_equal(V.to_uint8(t), f)
    x = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 1, 6).expand(2, 3, 1, 6)
    u = V.to_uint8(x)
    assert u.shape == (2, 1, 6, 3) and u.dtype == np.uint8
    assert list(u[0, 0, :, 0]) == [0, 0, 128, 255, 255, 255]


def test_import_is_light():
    code = "import sys, model.video_io; print(sorted(m for m in ('torch', 'cv2', 'imageio', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_large_still_images_are_read_reduced(tmp_path):
    from PIL import Image

    big = np.zeros((6000, 8000, 3), np.uint8)
    big[:, 4000:] = (200, 30, 30)
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=80)
    for name in ("big.png", "big.jpg"):
        im = V.read_image(str(tmp_path / name))
        assert im.shape == (1536, 2048, 3)  # reduced to fit 2048, aspect kept
        assert im[:, 1100:, 0].mean() > 190 and im[:, :900].max() < 20
    Image.new("L", (13000, 12000)).save(tmp_path / "huge.png")  # 156 megapixels
    with pytest.raises(InvalidInput, match="image too large"):
        V.read_image(str(tmp_path / "huge.png"))
