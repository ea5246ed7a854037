"""Video files in and out: plain reading and writing of frames, no command-line policy.

At the file boundary a video is a numpy uint8 array (T, H, W, 3), RGB, plus a frame rate
in frames per second. fps 0.0 means "no timing": a still image or a folder of frames.

Readers take a path (a file, or a folder of PNG frames) and pick a decoder from its suffix or
its magic bytes. Encoders write MP4 (imageio-ffmpeg), GIF (Pillow) or PNG frames to the path
given, with how the clip was made stored inside (read_provenance gets it back). write_video is
atomic: frames are encoded under a hidden temporary name next to the target and moved into
place only when complete, so an error or Ctrl-C never leaves a half-written output behind.

Output policy (which path and format, the standard streams, whether an existing output may be
replaced, auto-names) is the command line's, in videopoet_cli.files, as are messages naming its
flags. Failures the user can act on are raised as VideoPoetError (exit 1) or InvalidInput (exit 2)
with one human line naming the path. The module imports only numpy at import time; torch, cv2,
imageio and Pillow are imported where they are used so `--help` stays fast.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import tempfile
import secrets
import shutil
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

from .errors import InvalidInput, VideoPoetError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
GIF_SUFFIX = ".gif"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
OUTPUT_KINDS = ("mp4", "gif", "png")  # what the encoders write; "png" = a folder of PNG frames
# Decoded frames above this many bytes are refused rather than exhausting memory.
MAX_BYTES = 2 << 30
# GIF frame delays are stored in centiseconds; 2 cs (50 fps) is the shortest that viewers honour.
GIF_MIN_DELAY_CS = 2
_GIF_TAG = "videopoet"
PROVENANCE_TAG = "videopoet-provenance"  # followed by one line of JSON, in every format


# ----------------------------------------------------------------------------- helpers


def _suffix(path: str) -> str:
    return os.path.splitext(path.rstrip("/" + os.sep))[1].lower()


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def sniff(head: bytes) -> str | None:
    """The suffix matching the magic bytes of `head` (a file's first 32 bytes), or None: lets a file with
    an odd name, or none, be read with the right decoder."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if head[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return ".avi"
    if head[4:8] == b"ftyp":
        return ".mov" if head[8:10] == b"qt" else ".mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return ".mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".mkv"
    if head[:2] == b"BM" and len(head) >= 26:
        return ".bmp"
    return None


def _read_head(path: str, n: int = 32) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _check_budget(name: str, frames: int, h: int, w: int, max_pixels: int, max_bytes: int) -> None:
    """Refuse (InvalidInput) frames too big to hold in memory, before decoding them."""
    if h * w > max_pixels:
        raise InvalidInput(f"video too large: {name} has {w}x{h} frames (at most {max_pixels} pixels per frame)")
    need = frames * h * w * 3
    if need > max_bytes:
        raise InvalidInput(
            f"video too large: {name} has {frames} frames of {w}x{h}, {_gib(need)} decoded "
            f"(limit {_gib(max_bytes)}); trim it or read fewer frames"
        )


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    """np.stack that frees each frame as it is copied, so peak memory stays ~1x the video."""
    out = np.empty((len(frames), *frames[0].shape), dtype=np.uint8)
    for i in range(len(frames)):
        out[i] = frames[i]
        frames[i] = None  # type: ignore[call-overload]
    return out


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {getattr(frames, 'shape', type(frames))}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
        raise ValueError(f"cannot write an empty video of shape {frames.shape}")
    return np.ascontiguousarray(frames)


# ----------------------------------------------------------------------------- writing


def new_temp_path(target: str, suffix: str = "", folder: bool = False) -> str:
    """Create an empty hidden file (a folder if `folder`) next to `target`, named after it
    (.NAME.<random>.tmpSUFFIX), with the permissions a new file gets (from the umask, unlike mkstemp's
    0600): where an output is encoded before it is moved into place. OSError if the folder is not writable."""
    target = target.rstrip("/" + os.sep) or target
    parent = os.path.dirname(os.path.abspath(target))
    while True:
        tmp = os.path.join(parent, f".{os.path.basename(target)}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            if folder:
                os.mkdir(tmp)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def remove_path(path: str) -> None:
    """Remove a file or a folder tree if it is there; never raises (cleanup of temporary outputs)."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def _encode_mp4(frames: np.ndarray, tmp: str, fps: float, note: str = "") -> None:
    """H.264 (yuv420p, CRF 18) through the ffmpeg that imageio-ffmpeg ships, fed raw RGB on stdin.

    Run directly rather than through imageio's writer because that writer never looks at ffmpeg's exit
    status: a full disk (or a file-size limit) left a truncated MP4 that was reported as written.
    Here a failing ffmpeg is an OSError carrying its own last error line."""
    import subprocess

    import imageio_ffmpeg

    t, h, w, _ = frames.shape
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", repr(float(fps)), "-i", "pipe:0", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-crf", "18", "-preset", "medium", "-movflags", "+faststart"]  # fmt: skip
    if note:
        cmd += ["-metadata", f"comment={PROVENANCE_TAG} {note}"]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg can never block on a full stderr
        p = subprocess.Popen(cmd + [tmp], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                for frame in frames:
                    p.stdin.write(np.ascontiguousarray(frame).tobytes())
                p.stdin.close()
            except BrokenPipeError:  # ffmpeg stopped reading: its exit status and log say why
                pass
            rc = p.wait()
        except BaseException:
            p.kill()
            p.wait()
            raise
        if rc != 0:
            log.seek(0)
            text = log.read().decode(errors="replace").strip()
            lines = _ffmpeg_log_lines(text)
            reason = next((ln for ln in lines if "too large" in ln.lower() or "no space" in ln.lower()), lines[-1] if lines else "")
            if rc < 0:  # killed by a signal: SIGXFSZ is the file-size limit, as a full disk looks to ffmpeg
                import signal

                try:
                    name = signal.Signals(-rc).name
                except ValueError:
                    name = f"signal {-rc}"
                reason = reason or ("file too large (SIGXFSZ)" if name == "SIGXFSZ" else f"stopped by {name}")
            raise OSError(f"ffmpeg could not encode the video{': ' + reason[:160] if reason else f' (exit status {rc})'}")


def _gif_delays_cs(fps: float, n: int) -> list[int]:
    """Whole-centisecond delays whose running sum tracks i * 100 / fps: 8 fps is 13, 12, 13, 12 ... cs, so
    players show exactly 8 fps on average (a constant 13 cs would be 7.69 fps)."""
    if 100.0 / fps < GIF_MIN_DELAY_CS:
        return [GIF_MIN_DELAY_CS] * n
    ends = [_round_half_up(100.0 * (i + 1) / fps) for i in range(n)]
    return [b - a for a, b in zip([0] + ends[:-1], ends)]


def _encode_gif(frames: np.ndarray, tmp: str, fps: float, note: str = "") -> None:
    from PIL import Image

    # GIF delays are whole centiseconds; 12.5 cs frames alternate 13 and 12 cs. The exact fps, frame count
    # and mean delay go into a comment so read_video gets them back (Pillow merges identical frames).
    delays = _gif_delays_cs(fps, len(frames))
    mean_cs = max(GIF_MIN_DELAY_CS, 100.0 / fps)
    images = [Image.fromarray(f, "RGB") for f in frames]
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[d * 10 for d in delays] if len(delays) > 1 else delays[0] * 10,
        loop=0,
        optimize=False,
        comment=(f"{_GIF_TAG} fps={fps!r} frames={len(frames)} delay_cs={mean_cs!r}"
                 + (f"\n{PROVENANCE_TAG} {note}" if note else "")).encode(),
    )


def _frame_name(i: int, total: int) -> str:
    return f"frame_{i:0{max(4, len(str(total - 1)))}d}.png"


def _write_png_frames(frames: np.ndarray, folder: str, note: str = "") -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if note:
        info.add_itxt(PROVENANCE_TAG, note)
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(frames):
        path = os.path.join(folder, _frame_name(i, len(frames)))
        Image.fromarray(frame, "RGB").save(path, format="PNG", compress_level=4, pnginfo=info)


def move_frames(src: str, dst: str) -> None:
    """Put the PNG frames of folder `src` (just written) into the existing folder `dst`: each one is moved
    with os.replace, which is atomic, so `dst` never lacks a frame. Then the other frame_*.png files of
    `dst` (left from a longer clip) are removed, other files are kept, and `src` is removed."""
    old = set(glob.glob(os.path.join(glob.escape(dst), "frame_*.png")))
    for name in sorted(os.listdir(src)):
        path = os.path.join(dst, name)
        os.replace(os.path.join(src, name), path)
        old.discard(path)
    for stale in old:
        os.unlink(stale)
    os.rmdir(src)


def check_video(frames: np.ndarray, fps: float, kind: str, name: str) -> np.ndarray:
    """`frames` made contiguous, once they are known to be writable as `kind` (mp4, gif or png).
    A wrong shape, dtype or kind is ValueError (a caller's bug); a frame rate or size the format cannot
    store is InvalidInput naming `name` (the output as messages show it)."""
    frames = _check_frames(frames)
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    if kind != "png" and not (fps > 0 and math.isfinite(fps)):
        raise InvalidInput(f"frame rate must be positive to write {kind}, got {fps}")
    _, h, w, _ = frames.shape
    if kind == "mp4" and (h % 2 or w % 2):
        raise InvalidInput(f"MP4 needs an even width and height, got {w}x{h}: {name}")
    return frames


def encode_video(frames: np.ndarray, path: str, fps: float, kind: str, provenance: dict | None = None,
                 name: str | None = None) -> None:
    """Encode uint8 (T, H, W, 3) RGB frames straight into `path`: an MP4 or GIF file, or ("png") the files
    frame_0000.png ... in the folder `path` (made if missing). Not atomic by itself: write_video encodes
    into a temporary path and moves it into place.

    `provenance` (how the clip was made) is stored as JSON in the MP4 comment, the GIF comment or a PNG
    text chunk of every frame. MP4 needs even H and W (yuv420p); GIF delays are whole centiseconds (8 fps
    is stored as 13, 12, 13 ... cs). A failing encoder or disk is VideoPoetError naming `name` (default:
    `path`; a caller encoding into a temporary file names its target).
    """
    name = path if name is None else name
    frames = check_video(frames, fps, kind, name)
    note = json.dumps(provenance, ensure_ascii=True, separators=(",", ":")) if provenance else ""
    try:
        if kind == "png":
            _write_png_frames(frames, path, note)
        elif kind == "mp4":
            _encode_mp4(frames, path, fps, note)
        else:
            _encode_gif(frames, path, fps, note)
    except (OSError, RuntimeError) as e:  # disk full, permissions, ffmpeg failure...
        raise VideoPoetError(f"could not write {name}: {_short_reason(e)}") from e


def write_video(frames: np.ndarray, path: str, fps: float, kind: str, overwrite: bool = False,
                provenance: dict | None = None) -> None:
    """Write uint8 (T, H, W, 3) RGB frames to `path` as mp4, gif or ("png") a folder of PNG frames, with
    `provenance` stored inside (see encode_video; read_provenance gets it back).

    Atomic: nothing half-written is ever left at `path`, even on Ctrl-C. The frames are encoded under a
    hidden temporary name next to `path`, then moved into place; a PNG folder that exists gets its frames
    replaced one by one (move_frames). An existing output (for "png", a folder that is not empty) is refused
    with InvalidInput unless `overwrite`.

    The command line writes through videopoet_cli.files.write_video instead: the same encoders, plus the
    standard output, its up-front checks and messages, and a no-clobber rule that also holds when another
    process takes the name while the clip is encoded.
    """
    frames = check_video(frames, fps, kind, path)
    target = path.rstrip("/" + os.sep) or path
    if not overwrite and os.path.lexists(target) and not (kind == "png" and os.path.isdir(target) and not os.listdir(target)):
        raise InvalidInput(f"{path} exists; not replaced (overwrite is off)")

    def place(tmp: str, target: str) -> None:
        if kind == "png" and os.path.isdir(target):
            move_frames(tmp, target)
        else:
            os.replace(tmp, target)

    try:
        encode_then_place(frames, path, fps, kind, provenance, place)
    except OSError as e:
        raise VideoPoetError(f"could not write {path}: {_short_reason(e)}") from e


def encode_then_place(frames: np.ndarray, path: str, fps: float, kind: str, provenance: dict | None,
                      place: Callable[[str, str], None]) -> None:  # fmt: skip
    """Encode under a hidden temporary name next to `path` (a folder for "png"), then `place(tmp, target)`
    puts it there; on any failure, Ctrl-C included, the temporary is removed and the exception goes on.
    The one mechanism behind write_video and the command line's no-clobber writes (their `place` differ)."""
    target = path.rstrip("/" + os.sep) or path
    tmp = new_temp_path(target, "" if kind == "png" else f".{kind}", folder=kind == "png")
    try:
        encode_video(frames, tmp, fps, kind, provenance, name=path)
        place(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise


def _short_reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return (_ffmpeg_reason(text) or text.splitlines()[-1][:160]) if text else type(e).__name__


# ----------------------------------------------------------------------------- input


def is_image_path(path: str) -> bool:
    """True when the name says still image (.png .jpg .jpeg .webp .bmp); GIFs count as video."""
    return _suffix(path) in IMAGE_SUFFIXES


def _open_source(path: str, name: str | None = None) -> tuple[str, str]:
    """(suffix to decode as, display name) for a local file, with existence/emptiness/format checks."""
    name = path if name is None else name
    if not os.path.exists(path):
        raise VideoPoetError(f"file not found: {name}")
    if not os.path.isfile(path):
        raise VideoPoetError(f"not a file: {name}")
    if os.path.getsize(path) == 0:
        raise VideoPoetError(f"file is empty: {name}")
    suffix = _suffix(path)
    if suffix in VIDEO_SUFFIXES or suffix in IMAGE_SUFFIXES or suffix == GIF_SUFFIX:
        return suffix, name
    sniffed = sniff(_read_head(path))
    if sniffed is None:
        raise VideoPoetError(
            f"not a video or image: {name} (accepted: {', '.join(VIDEO_SUFFIXES + (GIF_SUFFIX,) + IMAGE_SUFFIXES)})"
        )
    return sniffed, name


def _undecodable(path: str, name: str, err: BaseException | str) -> VideoPoetError:
    """One-line error: unknown contents -> "not a video", known magic -> "truncated or corrupt"."""
    try:
        known = sniff(_read_head(path)) is not None
    except OSError:
        known = False
    if not known:
        return VideoPoetError(f"not a video or image (unrecognised contents): {name}")
    if "does not contain any stream" in str(err):  # ffmpeg found no video stream to decode
        return VideoPoetError(f"no video frames in {name}")
    reason = _ffmpeg_reason(str(err))
    why = f" ({reason})" if reason else ""
    return VideoPoetError(f"cannot decode {name}: the file is truncated or corrupt{why}")


_FFMPEG_REASONS = ("moov atom not found", "partial file", "invalid data found", "truncated",
                   "could not find codec parameters", "no video stream", "corrupt")


def _ffmpeg_log_lines(log: str) -> list[str]:
    """The non-empty lines of an ffmpeg log without their "[mov @ 0x..]" prefixes."""
    return [ln for ln in (re.sub(r"^(\[[^\]]*\]\s*)+", "", raw).strip() for raw in log.splitlines()) if ln]


def _ffmpeg_reason(log: str) -> str | None:
    """The line of an ffmpeg log that says what is wrong, without its "[mov @ 0x..]" prefix."""
    lines = _ffmpeg_log_lines(log)
    for phrase in _FFMPEG_REASONS:
        for ln in lines:
            if phrase in ln.lower():
                return ln[:120]
    return None


def _ffmpeg_demux_errors(path: str) -> str | None:
    """Errors ffmpeg reports while demuxing the video stream (no decoding, ~20 ms): catches
    truncated files that ffmpeg otherwise decodes silently up to the cut."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", path,
           "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if not r.stderr.strip() and r.returncode == 0:
        return None
    return _ffmpeg_reason(r.stderr) or "ffmpeg reported errors"


def _pil_to_rgb(im: Any) -> np.ndarray:
    """Any Pillow frame -> uint8 (H, W, 3): alpha composited over black, grey/16-bit scaled to 0..255."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if a.max(initial=0) > 255 else 255.0
        g = np.clip(a * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if im.mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"), dtype=np.uint8).copy()
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _fps_from_delay(delay_ms: float, quantum_ms: float) -> float:
    """Frame rate from a (quantised) frame delay: snap to a common integer rate whose delay rounds to it.

    GIF stores 8 fps as 13 cs = 130 ms; reading that as 7.69 fps would make resampling to 8 fps
    duplicate a frame, so integer rates that round to the stored delay are preferred.
    """
    raw = 1000.0 / delay_ms
    steps = delay_ms / quantum_ms
    cands = [f for f in range(1, 121) if _round_half_up(1000.0 / f / quantum_ms) == round(steps)]
    if abs(steps - round(steps)) > 1e-6 or not cands:
        return raw
    common = [f for f in cands if f in (8, 10, 12, 15, 16, 24, 25, 30, 50, 60)]
    return float(min(common or cands, key=lambda f: abs(f - raw)))


def _read_animated(
    path: str, name: str, suffix: str, max_frames: int | None, max_pixels: int, max_bytes: int
) -> tuple[np.ndarray, float]:
    """GIF / animated WebP / APNG / stills via Pillow, returned at a constant frame rate."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(path)
    except UnidentifiedImageError as e:
        raise _undecodable(path, name, e) from e
    except Image.DecompressionBombError as e:
        raise InvalidInput(f"video too large: {name} ({e})") from e
    except OSError as e:
        raise _undecodable(path, name, e) from e
    with im:
        w, h = im.size
        try:
            n = getattr(im, "n_frames", 1)
        except (OSError, EOFError, SyntaxError, ValueError) as e:
            raise _undecodable(path, name, e) from e
        if n == 0:
            raise VideoPoetError(f"no frames in {name}")
        _check_budget(name, min(n, max_frames or n), h, w, max_pixels, max_bytes)
        comment = im.info.get("comment", b"") if im.format == "GIF" else b""
        # MPO (camera JPEGs) also report several frames: only GIF/APNG/WebP animations are videos.
        animated = n > 1 and im.format in ("GIF", "PNG", "WEBP")
        if not animated and _GIF_TAG.encode() not in comment:
            try:
                still = _pil_to_rgb(ImageOps.exif_transpose(im) or im)
            except (OSError, EOFError, SyntaxError, ValueError) as e:
                raise _undecodable(path, name, e) from e
            return still[None], 0.0
        is_gif = im.format == "GIF"
        frames: list[np.ndarray] = []
        delays: list[float] = []
        try:
            for i in range(n):
                im.seek(i)
                d = float(im.info.get("duration") or 0)
                # Browsers show GIF delays of 0-1 cs as 10 cs; do the same.
                delays.append(100.0 if (d <= 0 or (is_gif and d <= 10)) else d)
                # Each stored frame yields >= 1 output frame, so max_frames stored ones suffice;
                # later frames are only seeked for their delays (needed for the frame rate).
                if max_frames is None or len(frames) < max_frames:
                    frames.append(_pil_to_rgb(im))
        except (OSError, EOFError, SyntaxError, ValueError) as e:
            raise _undecodable(path, name, e) from e
    quantum = 10.0 if is_gif else 1.0
    fps, repeats = _constant_rate(comment, delays, quantum)
    total = sum(repeats)
    if max_frames is not None:
        total = min(total, max_frames)
    _check_budget(name, total, h, w, max_pixels, max_bytes)
    out = np.empty((total, h, w, 3), dtype=np.uint8)
    k = 0
    for frame, r in zip(frames, repeats):  # frames may be shorter than repeats (max_frames)
        for _ in range(r):
            if k == total:
                break
            out[k] = frame
            k += 1
    return out, fps


def _constant_rate(comment: bytes, delays: list[float], quantum: float) -> tuple[float, list[int]]:
    """(fps, how many times to repeat each stored frame) so that timing is kept at a constant rate.

    Pillow's GIF writer merges identical consecutive frames into one with the summed delay; our
    own GIFs carry "videopoet fps=.. frames=.. delay_cs=.." to undo that exactly. Other files:
    when every delay is a multiple of the shortest, frames are repeated; else fps = 1000/mean delay.
    """
    m = re.search(rb"videopoet fps=([0-9.e+-]+) frames=(\d+) delay_cs=([0-9.]+)", comment or b"")
    if m:
        fps, count, base = float(m.group(1)), int(m.group(2)), float(m.group(3)) * 10.0
        repeats = [max(1, round(d / base)) for d in delays]
        if sum(repeats) == count and fps > 0:
            return fps, repeats
    base = min(delays)
    ratios = [d / base for d in delays]
    if all(abs(r - round(r)) < 0.02 for r in ratios) and sum(round(r) for r in ratios) <= 8 * len(delays):
        return _fps_from_delay(base, quantum), [int(round(r)) for r in ratios]
    return 1000.0 / (sum(delays) / len(delays)), [1] * len(delays)


def _read_ffmpeg(
    path: str, name: str, max_frames: int | None, max_pixels: int, max_bytes: int
) -> tuple[np.ndarray, float]:
    import imageio.v2 as iio

    try:
        reader = iio.get_reader(path, format="FFMPEG")
    except Exception as e:  # imageio raises OSError/RuntimeError/IndexError with ffmpeg's log
        raise _undecodable(path, name, e) from e
    try:
        meta = reader.get_meta_data()
        fps = float(meta.get("fps") or 0.0)
        w, h = (int(v) for v in meta.get("size", (0, 0)))
        est = meta.get("nframes", float("inf"))
        duration = float(meta.get("duration") or float("inf"))
        if not math.isfinite(est) and fps > 0 and math.isfinite(duration):
            est = math.floor(duration * fps)
        if math.isfinite(est) and w and h:
            n = int(est) if max_frames is None else min(int(est), max_frames)
            _check_budget(name, n, h, w, max_pixels, max_bytes)
        elif w and h:
            _check_budget(name, 1, h, w, max_pixels, max_bytes)
        frames: list[np.ndarray] = []
        try:
            for frame in reader.iter_data():
                if max_frames is not None and len(frames) >= max_frames:
                    break
                frame = np.asarray(frame, dtype=np.uint8)
                if frame.ndim == 2:
                    frame = np.repeat(frame[..., None], 3, axis=2)
                elif frame.shape[-1] == 4:
                    frame = frame[..., :3]
                frames.append(frame)
                fh, fw = frame.shape[:2]
                _check_budget(name, len(frames), fh, fw, max_pixels, max_bytes)
        except (InvalidInput, KeyboardInterrupt):
            raise
        except Exception as e:
            raise _undecodable(path, name, e) from e
    finally:
        try:
            reader.close()
        except Exception:
            pass
    short = math.isfinite(est) and len(frames) < min(est, max_frames or est) - 1
    if short or not frames:
        # Fewer frames than the header promises: ffmpeg decodes a cut-off file silently up to the cut.
        reason = _ffmpeg_demux_errors(path)
        if reason:
            raise VideoPoetError(f"cannot decode {name}: the file is truncated or corrupt ({reason})")
    if not frames:
        raise VideoPoetError(f"no frames in {name}")
    if not fps > 0:
        raise VideoPoetError(f"cannot tell the frame rate of {name}")
    return _stack(frames), fps


def _natural_key(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _read_folder(path: str, max_frames: int | None, max_pixels: int, max_bytes: int) -> tuple[np.ndarray, float]:
    """A folder of PNG frames (frame_*.png preferred, else every .png), in natural order; fps 0.0."""
    names = [n for n in os.listdir(path) if n.lower().endswith(".png") and not n.startswith(".")]
    framed = [n for n in names if n.startswith("frame_")]
    names = sorted(framed or names, key=_natural_key)
    if not names:
        raise VideoPoetError(f"no frames in {path}: expected PNG files such as frame_0000.png")
    if max_frames is not None:
        names = names[:max_frames]
    frames: list[np.ndarray] = []
    for n in names:
        f, _ = _read_animated(os.path.join(path, n), os.path.join(path, n), ".png", 1, max_pixels, max_bytes)
        if frames and f.shape[1:] != frames[0].shape:
            h0, w0 = frames[0].shape[:2]
            raise VideoPoetError(f"frame size differs in {path}: {n} is {f.shape[2]}x{f.shape[1]}, others {w0}x{h0}")
        frames.append(f[0])
        _check_budget(path, len(frames), f.shape[1], f.shape[2], max_pixels, max_bytes)
    return _stack(frames), 0.0


def read_video(path: str, max_frames: int | None = None, max_pixels: int = 4096 * 4096,
               max_bytes: int = MAX_BYTES, name: str | None = None) -> tuple[np.ndarray, float]:
    """Read a video, GIF, still image or PNG-frame folder as (uint8 (T, H, W, 3), fps).

    fps is 0.0 for a still image or a frame folder (no timing). max_frames stops decoding early
    for long inputs; max_pixels bounds one frame (H*W) and max_bytes the decoded video, so a huge
    input fails with InvalidInput instead of exhausting memory. Other failures: VideoPoetError.
    `name` is how messages name a file (default: `path`; a caller reading a temporary copy names the original).
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    if os.path.isdir(path):
        return _read_folder(path, max_frames, max_pixels, max_bytes)
    suffix, name = _open_source(path, name)
    return _read_source(path, name, suffix, max_frames, max_pixels, max_bytes)


def _read_source(path: str, name: str, suffix: str, max_frames: int | None, max_pixels: int,
                 max_bytes: int) -> tuple[np.ndarray, float]:
    if suffix in VIDEO_SUFFIXES:
        return _read_ffmpeg(path, name, max_frames, max_pixels, max_bytes)
    return _read_animated(path, name, suffix, max_frames, max_pixels, max_bytes)


def read_image(path: str, name: str | None = None) -> np.ndarray:
    """Read one still image as uint8 (H, W, 3). A video is a usage error, not a frame.
    `name` is how messages name the file (default: `path`)."""
    if os.path.isdir(path):
        raise InvalidInput(f"{path if name is None else name} is a folder; give an image")
    suffix, name = _open_source(path, name)
    return _read_image_file(path, name, suffix)


STILL_MAX_PIXELS = 150_000_000  # a still image may be this large (about 450 MB decoded, once)
STILL_MAX_SIDE = 2048  # stills are reduced to fit this while reading (the model sees 64x64)


def _read_still(path: str, name: str) -> np.ndarray | None:
    """A still image of any size up to STILL_MAX_PIXELS, reduced to fit STILL_MAX_SIDE while decoding
    (JPEG decodes at a fraction of its size; others are reduced right after). None if animated."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = STILL_MAX_PIXELS // 2  # Pillow refuses above twice this
    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        raise InvalidInput(f"image too large: {name} has more than {STILL_MAX_PIXELS // 1_000_000} megapixels") from None
    except (UnidentifiedImageError, OSError) as e:
        raise _undecodable(path, name, e) from e
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with im:
        w, h = im.size
        if w * h > STILL_MAX_PIXELS:
            raise InvalidInput(f"image too large: {name} is {w}x{h} (at most {STILL_MAX_PIXELS // 1_000_000} megapixels)")
        try:
            if getattr(im, "n_frames", 1) > 1 and im.format in ("GIF", "PNG", "WEBP"):
                return None
            if max(w, h) > STILL_MAX_SIDE:
                im.draft("RGB", (STILL_MAX_SIDE, STILL_MAX_SIDE))  # JPEG: decode reduced (no-op for others)
            rgb = _pil_to_rgb(ImageOps.exif_transpose(im) or im)
        except (OSError, EOFError, SyntaxError, ValueError) as e:
            raise _undecodable(path, name, e) from e
    h, w = rgb.shape[:2]
    if max(h, w) > STILL_MAX_SIDE:
        import cv2

        k = STILL_MAX_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return rgb


def _read_image_file(path: str, name: str, suffix: str) -> np.ndarray:
    if suffix in VIDEO_SUFFIXES:
        raise InvalidInput(f"{name} is a video; give an image")
    still = _read_still(path, name)
    if still is not None:
        return still
    frames, _ = _read_animated(path, name, suffix, None, 4096 * 4096, MAX_BYTES)
    if len(frames) != 1:
        raise InvalidInput(f"{name} is an animation ({len(frames)} frames); give an image")
    return frames[0]


# ----------------------------------------------------------------------------- frame ops


def resample_fps(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Change frame rate keeping the duration: output frame j shows the input frame on screen at
    its centre time (j + 0.5) / fps_out. fps_in 0 (still image / no timing) returns frames as is."""
    if not fps_in:
        return frames
    if fps_in < 0 or not fps_out > 0:
        raise ValueError(f"frame rates must be positive, got {fps_in} -> {fps_out}")
    t_in = len(frames)
    t_out = max(1, _round_half_up(t_in * fps_out / fps_in))
    idx = np.floor((np.arange(t_out) + 0.5) * (fps_in / fps_out)).astype(np.int64)
    return frames[np.clip(idx, 0, t_in - 1)]


def center_crop_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop (T, H, W, 3) to a square and resize to size x size (INTER_AREA down, LINEAR up)."""
    import cv2

    _, h, w, _ = frames.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = frames[:, y0:y0 + side, x0:x0 + side]
    if side == size:
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if size < side else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.ascontiguousarray(f), (size, size), interpolation=interp) for f in crop])


def upscale(frames: np.ndarray, size: int) -> np.ndarray:
    """Display-only resize of square frames to size x size (the --size option; the model never sees it).

    Integer multiples use nearest neighbour (crisp pixels, exact); other sizes use INTER_CUBIC
    (INTER_AREA when shrinking), clipped to uint8.
    """
    import cv2

    _, h, w, _ = frames.shape
    if h != w:
        raise ValueError(f"upscale expects square frames, got {w}x{h}")
    if size == h:
        return frames.copy()
    if size > h and size % h == 0:
        k = size // h
        return np.repeat(np.repeat(frames, k, axis=1), k, axis=2)
    interp = cv2.INTER_AREA if size < h else cv2.INTER_CUBIC
    out = [cv2.resize(np.ascontiguousarray(f), (size, size), interpolation=interp) for f in frames]
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float (T, 3, H, W) in [-1, 1] -> uint8 (T, H, W, 3), rounded (the file-boundary format)."""
    import torch

    with torch.no_grad():
        x = video.detach().float().clamp(-1, 1).add(1).mul(127.5).round()
        return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [-1, 1]; to_uint8 inverts it exactly."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


# ----------------------------------------------------------------------------- provenance


def _provenance_from_text(text: str) -> dict | None:
    m = re.search(re.escape(PROVENANCE_TAG) + r"\s*(\{.*\})", text, re.S)
    if m is None:
        return None
    try:
        found = json.loads(m.group(1))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def read_provenance(path: str) -> dict | None:
    """How a clip written by videopoet was made (the JSON stored by write_video), or None if it has none.
    Reads MP4 (ffmpeg's metadata), GIF and PNG files, and folders of PNG frames."""
    if os.path.isdir(path):
        frames = sorted(glob.glob(os.path.join(glob.escape(path), "*.png")))
        if not frames:
            raise InvalidInput(f"{path}: no PNG frames in this folder")
        path = frames[0]
    suffix, name = _open_source(path)
    head = _read_head(path)
    if head.startswith((b"GIF8", b"\x89PNG")):
        from PIL import Image

        try:
            with Image.open(path) as im:
                stored = im.info.get(PROVENANCE_TAG)  # PNG: a text chunk of its own
                text = f"{PROVENANCE_TAG} {stored}" if stored else im.info.get("comment", b"")
        except (OSError, ValueError) as e:
            raise _undecodable(path, name, e) from e
        return _provenance_from_text(text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text))
    import subprocess

    import imageio_ffmpeg

    r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", path, "-f", "ffmetadata", "-"],
                       capture_output=True, timeout=60)  # fmt: skip
    if r.returncode != 0:
        raise _undecodable(path, name, r.stderr.decode("utf-8", "replace").strip() or "ffmpeg could not read it")
    text = r.stdout.decode("utf-8", "replace")
    text = re.sub(r"\\(.)", r"\1", text)  # ffmetadata escapes = ; # \\ and newlines
    return _provenance_from_text(text)
