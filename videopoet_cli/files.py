"""Where the command line's files go: output paths and --format, `-` for stdin and stdout, --overwrite,
auto-names and their reservations, and the atomic, no-clobber placement of what is written.

model.video_io reads and encodes frames at plain paths and knows none of this; this module decides which
path, whether it may be written, and puts the result there (or on stdout). Its messages are the ones users
see, flags named. Only the standard library is imported at import time, so `videopoet --help` stays fast;
model.video_io (numpy, the codecs) is imported where it is used.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, List, Optional

from model.errors import InvalidInput, VideoPoetError

STDIO = "-"  # as an input: read stdin; as -o: write stdout
OUTPUT_KINDS = ("mp4", "gif", "png")  # --format values; "png" = a folder of PNG frames (model.video_io.OUTPUT_KINDS)


def display_name(path: str) -> str:
    """How messages name an input: "stdin" for `-`."""
    return "stdin" if path == STDIO else path


def _suffix(path: str) -> str:
    return os.path.splitext(path.rstrip("/" + os.sep))[1].lower()


def _reason(e: OSError) -> str:
    if e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[-1][:160] if text else type(e).__name__


# ----------------------------------------------------------------------------- inputs


def check_input(path: str) -> None:
    """INPUT must exist (`-` is stdin); reading it says what else is wrong."""
    if path != STDIO and not os.path.exists(path):
        raise InvalidInput(f"input not found: {path}")


def read_text(path: str, what: str) -> str:
    """A UTF-8 text file (or stdin for `-`), e.g. a prompts file."""
    if path == STDIO:
        return sys.stdin.read()
    if not os.path.exists(path):
        raise InvalidInput(f"{what} not found: {path}")
    if not os.path.isfile(path):
        raise InvalidInput(f"{what} is not a file: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8 text: {path}") from None
    except OSError as e:
        raise VideoPoetError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _stdin_to_temp() -> str:
    """Spool stdin to a temp file whose suffix matches its magic bytes: decoders need a seekable file."""
    from model.video_io import remove_path, sniff

    data = sys.stdin.buffer.read()
    if not data:
        raise VideoPoetError("stdin is empty: expected an image or video")
    suffix = sniff(data[:32])
    if suffix is None:
        raise VideoPoetError("stdin is not a recognised image or video (expected MP4, WebM/MKV, GIF, PNG or JPEG)")
    fd, tmp = tempfile.mkstemp(prefix=".videopoet-stdin.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        remove_path(tmp)
        raise
    return tmp


def read_video(path: str, max_frames: Optional[int] = None, **limits: int) -> tuple:
    """model.video_io.read_video, where `-` reads stdin (as "stdin" in messages)."""
    from model import video_io as V

    if path != STDIO:
        return V.read_video(path, max_frames, **limits)
    tmp = _stdin_to_temp()
    try:
        return V.read_video(tmp, max_frames, name="stdin", **limits)
    finally:
        V.remove_path(tmp)


def read_image(path: str) -> Any:
    """model.video_io.read_image, where `-` reads stdin (as "stdin" in messages)."""
    from model import video_io as V

    if path != STDIO:
        return V.read_image(path)
    tmp = _stdin_to_temp()
    try:
        return V.read_image(tmp, name="stdin")
    finally:
        V.remove_path(tmp)


# ----------------------------------------------------------------------------- output checks


def output_kind(path: str, fmt: Optional[str]) -> str:
    """Decide what to write ("mp4", "gif" or "png" = folder of PNG frames) from the path and --format.

    Done up front so that a bad name fails before any model work starts.
    """
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in OUTPUT_KINDS:
            raise InvalidInput(f"unknown format '{fmt}'; use one of: {', '.join(OUTPUT_KINDS)}")
    if path == STDIO:
        if fmt not in ("mp4", "gif"):
            raise InvalidInput("writing to stdout needs --format mp4 or gif")
        return fmt
    if not path:
        raise InvalidInput("output path is empty")
    suffix = _suffix(path)
    if not suffix and not (path.endswith(("/", os.sep)) or os.path.isdir(path)):
        if fmt is None:  # a clear choice, never a silent folder of frames
            raise InvalidInput(f"{path} has no extension: name a .mp4 or .gif file, a folder ending in /, or give --format")
        return fmt
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        kind = "png"
    elif suffix == ".mp4":
        kind = "mp4"
    elif suffix == ".gif":
        kind = "gif"
    else:
        raise InvalidInput(
            f"cannot write '{suffix}' files: {path} (use .mp4, .gif, or a folder for PNG frames)"
        )
    if fmt is not None and fmt != kind:
        what = "a folder of PNG frames" if kind == "png" else f"a {suffix} file"
        raise InvalidInput(f"--format {fmt} contradicts the output path {path}, which names {what}")
    return kind


def check_output(path: str, kind: str, overwrite: bool) -> None:
    """Fail (InvalidInput) now, before expensive work, if `path` cannot or must not be written."""
    if path == STDIO:
        return
    parent = os.path.dirname(os.path.abspath(path.rstrip("/" + os.sep) or path))
    if not os.path.isdir(parent):
        raise InvalidInput(f"output folder does not exist: {parent}")
    _check_writable(parent)
    if kind == "png":
        if os.path.exists(path) and not os.path.isdir(path):
            raise InvalidInput(f"{path} exists and is not a folder; PNG frames need a folder")
        if os.path.isdir(path) and os.listdir(path) and not overwrite:
            raise InvalidInput(f"{path} exists and is not empty; pass --overwrite to replace its frames")
        return
    if os.path.isdir(path):
        raise InvalidInput(f"{path} is a folder; give a file name ending in .{kind}")
    if os.path.lexists(path) and not overwrite:
        raise InvalidInput(f"{path} exists; pass --overwrite to replace it")


def refuse_existing(path: "str | os.PathLike[str]", overwrite: bool) -> None:
    """An output file other than a clip (weights, a report) is replaced only with --overwrite."""
    if os.path.exists(path) and not overwrite:
        raise InvalidInput(f"{path} exists; pass --overwrite to replace it")


def _check_writable(folder: str) -> None:
    """Create and remove a hidden file: a read-only folder or file system fails here, before any work."""
    from model.video_io import new_temp_path, remove_path

    try:
        remove_path(new_temp_path(os.path.join(folder, "videopoet-probe")))
    except OSError as e:
        raise VideoPoetError(f"cannot write in {folder}: {e.strerror or e}") from None


# ----------------------------------------------------------------------------- writing


def write_video(frames: Any, path: str, fps: float, kind: str, overwrite: bool = False,
                provenance: Optional[dict] = None) -> None:
    """Write uint8 (T, H, W, 3) RGB frames as mp4, gif or a PNG-frame folder, or to stdout ("-"), with
    `provenance` stored inside (model.video_io.encode_video; read_provenance gets it back).

    check_output first (folder there and writable, an existing output only with `overwrite`); then the
    frames are encoded to a hidden temp file next to the target and put into place: nothing half-written
    is ever left at `path`, even on Ctrl-C, and without `overwrite` a name that another process took
    meanwhile is not replaced (_place).
    """
    from model import video_io as V

    if kind == "png" and path == STDIO:
        raise InvalidInput("writing to stdout needs --format mp4 or gif")
    name = "stdout" if path == STDIO else path
    frames = V.check_video(frames, fps, kind, name)
    check_output(path, kind, overwrite)
    try:
        if path == STDIO:
            _write_stdout(frames, fps, kind, provenance)
        elif kind == "png":
            _write_png_folder(frames, path, overwrite, provenance)
        else:
            _write_file(frames, path, fps, kind, overwrite, provenance)
    except BrokenPipeError:
        raise  # stdout reader went away (e.g. `| head`): guard decides how quiet to be
    except OSError as e:  # placing the file: disk full, permissions... (encoder failures are already worded)
        raise VideoPoetError(f"could not write {name}: {_reason(e)}") from e


def _write_file(frames: Any, path: str, fps: float, kind: str, overwrite: bool,
                provenance: Optional[dict]) -> None:
    """Encode to a hidden temp file next to `path`, then put it into place (_place: no clobbering)."""
    from model import video_io as V

    V.encode_then_place(frames, path, fps, kind, provenance, lambda tmp, target: _place(tmp, target, overwrite))


def _write_stdout(frames: Any, fps: float, kind: str, provenance: Optional[dict]) -> None:
    """Encode to a private temp file (encoders need a seekable file), then copy it to stdout."""
    from model import video_io as V

    fd, tmp = tempfile.mkstemp(prefix=".videopoet.", suffix=f".{kind}")
    os.close(fd)
    try:
        V.encode_video(frames, tmp, fps, kind, provenance, name="stdout")
        out = sys.stdout.buffer
        with open(tmp, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
        out.flush()
    finally:
        V.remove_path(tmp)


def _write_png_folder(frames: Any, path: str, overwrite: bool, provenance: Optional[dict]) -> None:
    """Frames into a hidden temp folder next to the target; it becomes the target, or its frames replace
    those of an existing folder one by one (checked again: it may have filled up meanwhile)."""
    from model import video_io as V

    def place(tmp: str, target: str) -> None:
        if not os.path.isdir(target):
            os.rename(tmp, target)
            return
        check_output(path, "png", overwrite)
        V.move_frames(tmp, target)

    V.encode_then_place(frames, path, 0.0, "png", provenance, place)


def _place(tmp: str, path: str, overwrite: bool) -> None:
    """Move the finished temp file to `path`. Without overwrite a hard link puts it there only if the
    name is still free (another process may have written it meanwhile): nothing is ever replaced."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InvalidInput(f"{path} appeared while this clip was made (another process?); not replaced, pass --overwrite to replace it") from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(path):
            raise InvalidInput(f"{path} appeared while this clip was made (another process?); not replaced") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


# ----------------------------------------------------------------------------- names


def slug(text: str, max_len: int = 60) -> str:
    """A file-name-safe stem from a prompt: lower-case words joined by `-`, cut at a word."""
    s = re.sub(r"[^\w]+", "-", text.lower()).strip("-_")
    if len(s) > max_len:
        cut = s[:max_len]
        s = cut.rsplit("-", 1)[0] if "-" in cut[max_len // 2 :] else cut
    return s.strip("-_") or "video"


def input_stem(path: str, text: str) -> Callable[[str], str]:
    """Default output names for animate/extend/stylize: <input name>-<prompt>."""
    if path == STDIO:
        return lambda _: slug(text)
    base = slug(os.path.splitext(os.path.basename(path.rstrip("/" + os.sep)))[0], 30)
    return lambda _: f"{base}-{slug(text, 40)}"


def free_name(stem: str, ext: str, taken: set) -> str:
    """stem+ext, or stem-2, stem-3... if that exists, is already planned, or another run is writing it."""
    name, k = f"{stem}{ext}", 2
    while os.path.lexists(name) or name in taken or lock_owner(name) is not None:
        name, k = f"{stem}-{k}{ext}", k + 1
    return name


def is_folder_target(output: Optional[str], fmt: Optional[str]) -> bool:
    """-o names a folder to put clips in (a trailing / or an existing folder), unless --format png
    asks for that folder to hold PNG frames."""
    if output in (None, STDIO) or (fmt or "").lower().lstrip(".") == "png":
        return False
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def plan_outputs(output: Optional[str], fmt: Optional[str], overwrite: bool, stems: List[str]) -> tuple:
    """(kind, one path per clip) for -o OUTPUT and --format, checked and reserved before any model work.

    `stems` name the clips when no -o is given or -o is a folder (each made free: stem, stem-2, ...).
    -o FILE with several clips numbers them (clip-1.mp4 ...); -o FRAMES/ --format png with several
    clips puts a folder per clip in it (clip-1/ ...). Folders to be made are checked when they are made.
    """
    n = len(stems)
    if output == STDIO:
        kind = output_kind(output, fmt)
        if n > 1:
            raise InvalidInput(f"stdout takes one clip, but this makes {n}; give -o with a file name or folder")
        paths = [output]
    elif output is None or is_folder_target(output, fmt):
        # no -o, or -o FOLDER/: new names made from the prompt (in that folder), never overwriting
        f = (fmt or "mp4").lower().lstrip(".")
        kind = output_kind("x/" if f == "png" else f"x.{f}", fmt)
        ext = "" if kind == "png" else f".{kind}"
        folder = output or ""
        if folder and not os.path.isdir(folder):
            parent = os.path.dirname(os.path.abspath(folder.rstrip("/" + os.sep)))
            if not os.path.isdir(parent):
                raise InvalidInput(f"output folder does not exist: {parent}")
        taken: set = set()
        paths = []
        for stem in stems:
            path = free_name(os.path.join(folder, stem), ext, taken)
            taken.add(path)
            paths.append(path)
    else:
        kind = output_kind(output, fmt)
        if n == 1:
            paths = [output]
        elif kind == "png":
            check_output(output, "png", True)  # parent folder exists, not a file
            paths = [os.path.join(output, f"clip-{i + 1}") for i in range(n)]
        else:
            stem, ext = os.path.splitext(output)
            paths = [f"{stem}-{i + 1}{ext}" for i in range(n)]
    for path in paths:
        if _made_later(path, output, fmt, kind, n):
            continue  # in a folder made later, when the first clip is written
        check_output(path, kind, overwrite)
    for path in paths:
        if path != STDIO:
            reserve(path)
    return kind, paths


def _made_later(path: str, output: Optional[str], fmt: Optional[str], kind: str, n: int) -> bool:
    """`path` lies in a folder that -o names but that does not exist yet (made by make_parent)."""
    if output in (None, STDIO) or not (kind == "png" and n > 1 or is_folder_target(output, fmt)):
        return False
    return not os.path.isdir(os.path.dirname(os.path.abspath(path.rstrip("/" + os.sep) or path)))


def make_parent(path: str, output: Optional[str], fmt: Optional[str], kind: str, n: int) -> None:
    """Before a planned clip is written: make the folder -o named for the clips, if it is not there yet."""
    if _made_later(path, output, fmt, kind, n):
        os.makedirs(os.path.dirname(os.path.abspath(path.rstrip("/" + os.sep))), exist_ok=True)


# ----------------------------------------------------------------------------- reservations


def _lock_path(path: str) -> str:
    target = path.rstrip("/" + os.sep) or path
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.videopoet-lock")


def lock_owner(path: str) -> Optional[int]:
    """The live process (not this one) that reserved `path`, if any; stale reservations do not count."""
    try:
        with open(_lock_path(path)) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass  # alive, owned by someone else
    return pid


_RESERVED: List[str] = []


def release_reservations() -> None:
    """Remove this run's reservations (done when a command ends, however it ends, and at exit)."""
    while _RESERVED:
        try:
            os.unlink(_RESERVED.pop())
        except OSError:
            pass


def reserve(path: str) -> None:
    """Claim an output name for this run before any model work (a hidden lock file holding our pid), so
    a second run aiming at the same name stops at once instead of after its whole generation."""
    lock = _lock_path(path)
    if not os.path.isdir(os.path.dirname(os.path.abspath(lock))):
        return  # a folder made later: nothing to race for yet
    if not _RESERVED:
        import atexit

        atexit.register(release_reservations)
    tmp = lock + f".{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(str(os.getpid()))
        for _ in range(2):
            try:
                os.link(tmp, lock)  # exclusive and atomic: a reader sees no lock or a whole one
                break
            except FileExistsError:
                owner = lock_owner(path)
                if owner is not None:
                    raise InvalidInput(f"{path} is being written by another videopoet process (pid {owner}); choose another name") from None
                os.unlink(lock)  # stale: its process is gone
        else:
            return
    except OSError:
        return  # cannot reserve here (no hard links, ...): the final no-clobber write still protects the file
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    _RESERVED.append(lock)
