"""Helpers for the command-line tests: run the CLI in-process, read outputs back independently of
video_io, write input clips, and check the one-error-line contract."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence
from typer.testing import CliRunner

from model import video_io as V
from videopoet_cli.files import output_kind
from videopoet_cli.main import app

PROMPT = "a red circle moving right"
SLUG = "a-red-circle-moving-right"


def cli(*args, input=None, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)


def M(micro):
    """Options selecting the micro model."""
    return ["--preset", str(micro[0]), "--checkpoint", str(micro[1])]


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\nstderr: {result.stderr}\nexc: {result.exception!r}"
    return result


def read_back(path):
    """(uint8 frames (T, H, W, 3), fps) with imageio / Pillow, independently of video_io."""
    import imageio.v2 as iio

    path = Path(path)
    if path.is_dir():
        names = sorted(p for p in path.iterdir() if p.suffix == ".png")
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names]), None
    if path.suffix == ".gif":
        with Image.open(path) as im:
            delays = []
            frames = []
            for f in ImageSequence.Iterator(im):
                delays.append(f.info.get("duration"))
                frames.append(np.asarray(f.convert("RGB")))
        assert len(iio.mimread(path)) == len(frames)  # imageio agrees on the count
        return np.stack(frames), 1000.0 / delays[0]
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        fps = reader.get_meta_data()["fps"]
        frames = np.stack([np.asarray(f) for f in reader])
    finally:
        reader.close()
    return frames, fps


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def error_lines(text):
    return [ln for ln in text.splitlines() if "error" in ln.lower()]


def write_clip(path, T=20, H=80, W=100, fps=24):
    y, x = np.mgrid[0:H, 0:W]
    frames = np.empty((T, H, W, 3), np.uint8)
    for t in range(T):
        f = np.stack([x * 2 % 256, y * 3 % 256, np.full_like(x, 90)], -1)
        x0 = (3 * t) % (W - 20)
        f[H // 3 : H // 3 + 20, x0 : x0 + 20] = (230, 40, 30)
        frames[t] = f
    V.write_video(frames, str(path), fps, output_kind(str(path), None))
    return path


def write_png(path, H=80, W=100):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
    return path


def assert_one_error(r, code, *needles):
    assert r.exit_code == code, f"exit {r.exit_code}, stderr: {r.stderr}"
    errs = error_lines(r.stderr)
    assert len(errs) == 1, r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n.lower() in errs[0].lower(), errs[0]
    assert r.stdout == ""
