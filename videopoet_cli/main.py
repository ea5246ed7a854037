"""The `videopoet` command line: a thin Typer layer over `model.VideoPoet`.

Nothing heavy is imported at module level (torch, the model, video_io's codecs): `videopoet --help`
answers at once. Every command body runs inside `_guard()`, which turns the project's errors into
one line on stderr and an exit status: InvalidInput -> 2, VideoPoetError -> 1, Ctrl-C -> 130.
All validation happens before the model is loaded, so a bad request costs nothing and writes nothing.
Where files go (paths, `-`, --format, --overwrite, auto-names, atomic placement) is videopoet_cli.files;
model.video_io only reads and encodes frames.
"""

import json
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Iterator, List, Optional

import typer
import typer.core

from model.config import DTYPES, MAX_FPS, MAX_FRAMES, MAX_SECONDS
from model.errors import InvalidInput, InvalidSampling, VideoPoetError

from .files import (STDIO, check_input, display_name, input_stem, make_parent, plan_outputs, read_text,
                    release_reservations, slug)
from .guard import Terminated, guard, one_line as _one_line, print_error as _error, print_internal as _internal

__version__ = "0.1.0"

# Limits checked up front (model.config holds them; model.pipeline refuses the same).
MIN_SIZE, MAX_SIZE = 16, 2048
MAX_NUM = 64
MAX_SEED = 2**62

class _OneLineErrors(typer.core.TyperGroup):
    """The command group: usage errors (unknown option, bad value, missing argument) end as one `error:`
    line and exit 2, like every other error, instead of Click's boxed message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _run_main(lambda: super(_OneLineErrors, self).main(args, prog_name or "videopoet", complete_var, standalone_mode=False, **extra))


app = typer.Typer(
    name="videopoet",
    help=(
        "Text-to-video on a CPU, built the way Google's VideoPoet is: LFQ video tokens and one "
        "multi-task prefix language model. Make clips from text ([bold]generate[/]), animate an "
        "image, extend a clip, restyle one, remake a region ([bold]inpaint[/]) or widen it "
        "([bold]outpaint[/]); [bold]info[/] tells how a clip was made."
    ),
    epilog=(
        "Examples:\n\n"
        "  videopoet generate \"a red circle moving right\"\n\n"
        "  videopoet animate still.png -p \"a yellow circle moving down\" -o ball.gif\n\n"
        "  videopoet presets\n\n"
        "Run [bold]videopoet COMMAND --help[/] for a command's options."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=True,
    cls=_OneLineErrors,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# ----------------------------------------------------------------------------- errors


@contextmanager
def _guard() -> Iterator[None]:
    """A command body: errors as one line (guard), and this run's output reservations released however
    it ends (an input that fails to read after the names were reserved must not leave them behind)."""
    try:
        with guard():
            yield
    finally:
        release_reservations()


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Optional[List[str]] = None) -> None:
    """The console entry point (`videopoet`, `python -m videopoet_cli`)."""
    app(args=argv, prog_name="videopoet")


def _run_main(call: Callable[[], Any]) -> None:
    import signal

    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        pass
    try:
        code = call()
    except Terminated:
        sys.stderr.write("terminated\n")
        sys.exit(143)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:
        # Click's usage errors carry format_message() and exit_code (duck-typed: Typer vendors Click)
        if not (hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int)):
            raise
        ctx = getattr(e, "ctx", None)
        path = ctx.command_path if ctx is not None else "videopoet"
        hint = f" (see {path} --help)" if e.exit_code == 2 else ""
        _error(f"{e.format_message()}{hint}")
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


# ----------------------------------------------------------------------------- version


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"videopoet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Text-to-video on a CPU, built the way Google's VideoPoet is."""


# ----------------------------------------------------------------------------- option types

_OUT = "Output"
_SAMPLE = "Sampling"
_MODEL = "Model"
_TIME = "Length and frame rate"

OutputOpt = Annotated[
    Optional[str],
    typer.Option(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT,
        help="File to write: [bold].mp4[/], [bold].gif[/], or a folder for PNG frames; [bold]-[/] = stdout "
        "(needs --format). Default: a new name made from the prompt in the current folder. "
        "With several clips, -o clip.mp4 writes clip-1.mp4, clip-2.mp4, ... (a folder gets subfolders).",
    ),
]
FormatOpt = Annotated[
    Optional[str],
    typer.Option("--format", metavar="mp4|gif|png", rich_help_panel=_OUT,
                 help="Output format; needed with -o - (mp4 or gif). Default: from the file name, else mp4."),
]
SizeOpt = Annotated[
    Optional[int],
    typer.Option("--size", metavar="PX", rich_help_panel=_OUT,
                 help="Width and height of the written frames, even, 16..2048. A display upscale of the "
                 "model's 64x64 frames, not more detail. Default: the preset's display size (128)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", rich_help_panel=_OUT, help="Replace an existing output.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=_OUT, help="No progress bar, no messages (errors still go to stderr).")]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", rich_help_panel=_OUT,
                 help="Print one JSON line per clip (path, prompt, seed, frames, fps, sampling, ...) on stdout "
                 "(on stderr when the video goes to stdout). No progress bar."),
]
PresetOpt = Annotated[str, typer.Option("--preset", metavar="NAME|YAML", rich_help_panel=_MODEL, help="Model preset: a name (see `videopoet presets`) or a YAML file.")]
CheckpointOpt = Annotated[Optional[str], typer.Option("--checkpoint", metavar="FILE", rich_help_panel=_MODEL, help="Weights (.safetensors) to use instead of the preset's shipped ones.")]
DeviceOpt = Annotated[str, typer.Option("--device", rich_help_panel=_MODEL, help="Torch device: cpu, cuda, cuda:1, mps.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", metavar="float32|bfloat16|float16", rich_help_panel=_MODEL, help="Compute precision (autocast; weights stay float32). bfloat16 is fast on CPUs with avx512_bf16; float16 only on a GPU.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, max=256, rich_help_panel=_MODEL, help="CPU threads for torch. Default: $OMP_NUM_THREADS if set, else the CPUs this process may run on (its affinity) that other processes are not busy on at start.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", rich_help_panel=_SAMPLE, help="Random seed (default: the preset's). Variation i uses seed+i; same seed, same video.")]
NumOpt = Annotated[int, typer.Option("--num", "-n", rich_help_panel=_SAMPLE, help="Variations per prompt, 1..64.")]
TemperatureOpt = Annotated[Optional[float], typer.Option("--temperature", rich_help_panel=_SAMPLE, help="Sampling temperature, > 0 (default: the preset's; tiny: 0.7).")]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", rich_help_panel=_SAMPLE, help="Keep the k likeliest tokens; 0 = off.")]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", rich_help_panel=_SAMPLE, help="Nucleus sampling mass in (0, 1]; 1 = off.")]
DecodingOpt = Annotated[Optional[str], typer.Option("--decoding", metavar="sequential|jacobi", rich_help_panel=_SAMPLE, help="jacobi: several tokens per model call (parallel decoding); gives the same tokens as sequential for a seed, in fewer model calls. Default: the preset's.")]
CfgOpt = Annotated[Optional[float], typer.Option("--cfg", "--guidance", rich_help_panel=_SAMPLE, help="Classifier-free guidance scale, >= 0 (1 = off; default: the preset's; tiny: 2.0, and 3.0 for inpaint / outpaint).")]
NegativeOpt = Annotated[Optional[str], typer.Option("--negative", metavar="TEXT", rich_help_panel=_SAMPLE, help="What to steer away from: guidance pushes from this text instead of from no text (e.g. --negative \"red\").")]
ReadPromptOpt = Annotated[
    Optional[bool],
    typer.Option("--read-prompt/--literal", rich_help_panel=_SAMPLE, show_default=False,
                 help="--read-prompt: words the model was not trained on (\"lifting off\", \"tent shape\") are read by "
                      "text similarity and the model gets the prompt in its training words (shown as a note). --literal: "
                      "the prompt as written. Default: reading on with the preset's shipped weights, off for other checkpoints."),
]
SecondsOpt = Annotated[Optional[float], typer.Option("--seconds", "-s", rich_help_panel=_TIME, help="Length in seconds, up to 150 (default 2). Not with --frames.")]
FramesOpt = Annotated[Optional[int], typer.Option("--frames", rich_help_panel=_TIME, help="Exact number of frames, 1..1201. Not with --seconds.")]
FpsOpt = Annotated[Optional[float], typer.Option("--fps", rich_help_panel=_TIME, help="Frames per second of the output, up to 120 (default: the preset's, 8).")]


# ----------------------------------------------------------------------------- validation


def _check_text(text: Optional[str], what: str) -> str:
    if text is None or not text.strip():
        raise InvalidInput(f"{what} is empty")
    return text.strip()


def _collect_prompts(prompt: Optional[str], prompts_file: Optional[str]) -> List[str]:
    """PROMPT, or one prompt per line of --prompts-file / stdin (PROMPT or FILE `-`); blank lines skipped."""
    if prompt is not None and prompts_file is not None:
        raise InvalidInput("give a PROMPT or --prompts-file, not both")
    if prompt is None and prompts_file is None:
        raise InvalidInput("missing PROMPT (or --prompts-file FILE)")
    if prompt is not None and prompt != STDIO:
        return [_check_text(prompt, "the prompt")]
    source = STDIO if prompt == STDIO else prompts_file
    what = "stdin" if source == STDIO else f"prompts file {source}"
    prompts = [line.strip() for line in read_text(source, "prompts file").splitlines() if line.strip()]
    if not prompts:
        raise InvalidInput(f"no prompts in {what}")
    return prompts


def _fmt(x: float) -> str:
    return f"{x:g}"


_SAMPLING_FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p", "guidance": "--guidance/--cfg",
                   "decoding": "--decoding", "negative": "--negative"}  # fmt: skip


def _sampling_options(preset: Any, flags: dict) -> Any:
    """The preset's SamplingOptions with the flags given applied: the one object every clip samples with.
    SamplingOptions validates itself; a refusal names the flag."""
    try:
        return preset.sampling.with_changes(**flags)
    except InvalidSampling as e:
        raise InvalidInput(f"{_SAMPLING_FLAGS.get(e.field, e.field)} {e.detail}") from None


def _check_max_seconds(max_seconds: Optional[float]) -> None:
    if max_seconds is not None and not 0 < max_seconds <= MAX_SECONDS:
        raise InvalidInput(f"--max-seconds must be in (0, {MAX_SECONDS:g}], got {_fmt(max_seconds)}")


def _check_timing(seconds: Optional[float], frames: Optional[int], fps: Optional[float]) -> None:
    if seconds is not None and frames is not None:
        raise InvalidInput("--seconds and --frames are mutually exclusive; give one")
    if frames is not None and not 1 <= frames <= MAX_FRAMES:
        raise InvalidInput(f"--frames must be in 1..{MAX_FRAMES}, got {frames}")
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise InvalidInput(f"--seconds must be in (0, {MAX_SECONDS:g}], got {_fmt(seconds)}")
    if fps is not None and not 0 < fps <= MAX_FPS:
        raise InvalidInput(f"--fps must be in (0, {MAX_FPS:g}], got {_fmt(fps)}")


def _frames_note(run: "Run", n_frames: int, fps: float) -> None:
    """Say so when a frame count makes the model do work that is then dropped (it makes 17 frames, then
    8 more per window, at the preset's rate): the count is kept, never silently changed."""
    from model.pipeline import frames_made

    native, made = frames_made(run.preset, n_frames, fps)
    if native not in (1, made):
        run.note(f"note: {n_frames} frames at {_fmt(fps)} fps take {native} of the {made} frames the model makes "
                 f"at {run.preset.video.fps} fps (17, then 8 more per window); the cost is that of {made}")  # fmt: skip


def _frame_count(preset: Any, seconds: Optional[float], frames: Optional[int], fps: float) -> int:
    """Frames of the output: --frames, else 1 + seconds * fps (default: one model window, 2 s)."""
    if frames is not None:
        return frames
    if seconds is None:
        seconds = (preset.tokenizer.frames - 1) / preset.video.fps
    n = 1 + round(seconds * fps)
    if n > MAX_FRAMES:
        raise InvalidInput(f"{_fmt(seconds)} s at {_fmt(fps)} fps is {n} frames; at most {MAX_FRAMES} are made in one call")
    return n


# ----------------------------------------------------------------------------- shared state


@dataclass
class Job:
    prompt: str  # shown in progress / JSON (the style for stylize)
    seed: int
    path: str
    kind: str
    label: str
    extra: dict = field(default_factory=dict)  # more JSON keys (input, then...)


@dataclass
class Run:
    """What every generating command shares: the validated model, output and reporting options."""

    command: str
    preset_arg: str
    preset: Any
    checkpoint: Optional[str]
    device: str
    threads: Optional[int]
    dtype: str
    output: Optional[str]
    fmt: Optional[str]
    size: int
    overwrite: bool
    quiet: bool
    json: bool
    seed: int
    num: int
    options: Any  # model.config.SamplingOptions (frozen), passed whole to every model call
    _console: Any = None

    # -- reporting ---------------------------------------------------------------------------------
    @property
    def human(self) -> bool:
        return not (self.quiet or self.json)

    def note(self, message: str) -> None:
        """A notice on stderr (shown unless --quiet)."""
        if not self.quiet:
            sys.stderr.write(f"{message}\n")
            sys.stderr.flush()

    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    @contextmanager
    def progress(self, label: str) -> Iterator[Optional[Callable[[int, int], None]]]:
        """A rich progress bar on stderr (never stdout) while one clip is sampled; None when quiet/json."""
        if not self.human:
            yield None
            return
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = self.console()
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tokens"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=console.is_terminal,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with bar:
            task = bar.add_task(escape(label), total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                yield tick
            except BaseException:
                bar.live.transient = True  # a failed clip leaves no bar behind, only its error line
                raise

    # -- checks ------------------------------------------------------------------------------------
    def plan(self, items: List[tuple], default_stem: Callable[[str], str]) -> List[Job]:
        """Paths for (prompt, variation, extra) items, checked (format, folder, existing file) and reserved up
        front; without -o (or with -o FOLDER/) clips are named <default_stem(prompt)>_seed<N>."""
        n = len(items)
        # <slug>_seed<N>: the name says how to make the clip again
        stems = [f"{default_stem(prompt)}_seed{self.seed + variation}" for prompt, variation, _ in items]
        kind, paths = plan_outputs(self.output, self.fmt, self.overwrite, stems)
        jobs: List[Job] = []
        for i, ((prompt, variation, extra), path) in enumerate(zip(items, paths)):
            label = f"[{i + 1}/{n}] {_short(prompt)}" if n > 1 else _short(prompt)
            jobs.append(Job(prompt, self.seed + variation, path, kind, label, extra))
        return jobs

    # -- running -----------------------------------------------------------------------------------
    def load(self) -> Any:
        import torch

        from model.pipeline import VideoPoet

        try:
            dev = torch.device(self.device)
        except (RuntimeError, ValueError) as e:
            raise InvalidInput(f"unknown --device '{self.device}' ({_one_line(str(e))[:100]})") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise VideoPoetError(f"--device {self.device}: CUDA is not available on this machine")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise VideoPoetError(f"--device {self.device}: MPS is not available on this machine")
        torch.set_num_threads(cpu_threads(self.threads))
        if self.checkpoint is None and self.preset.weights is None:
            raise VideoPoetError(f"preset '{self.preset.name}' ships no weights; pass a checkpoint (--checkpoint FILE)")
        return VideoPoet.from_pretrained(self.preset_arg, checkpoint=self.checkpoint, device=self.device, dtype=self.dtype)

    def execute(self, jobs: List[Job], make: Callable[[Any, Job, Any], Any], fps: float, make_batch: Optional[Callable] = None) -> None:
        """Load the model once, make and write every clip (variations of one prompt as one batch when
        the command gives `make_batch`). One failing clip of several does not stop the others: it is
        reported, and the exit status is 1 at the end. Reservations are released by _guard."""
        vp = self.load()

        for prompt in dict.fromkeys(job.prompt for job in jobs):
            lines = vp.prompt_notes(prompt)
            if read := vp.read_as(prompt, self.options):
                lines.append(f"read as \"{read['read_as']}\" (in the words the model was trained on; --literal gives it the prompt as written)")
            for line in lines:
                self.note(f"note: {line}" if len(jobs) == 1 else f"note: {_short(prompt)}: {line}")

        # variations of one prompt run as one batch when the command can (clip i is still seed+i's clip)
        groups: List[List[Job]] = []
        for job in jobs:
            if make_batch is not None and groups and groups[-1][0].prompt == job.prompt:
                groups[-1].append(job)
            else:
                groups.append([job])
        failed = 0
        for group in groups:
            start = time.perf_counter()
            try:
                if len(group) == 1:
                    with self.progress(group[0].label) as tick:
                        videos = [make(vp, group[0], tick)]
                else:
                    with self.progress(f"{_short(group[0].prompt)} x{len(group)}") as tick:
                        videos = make_batch(vp, group, tick)
            except (KeyboardInterrupt, BrokenPipeError):
                raise
            except Exception as e:
                if len(jobs) == 1:
                    raise
                failed += len(group)
                self._failed(group[0] if len(group) == 1 else None, e)
                continue
            per_clip = (time.perf_counter() - start) / len(group)
            for job, video in zip(group, videos):
                try:
                    self._write(vp, job, video, fps, len(jobs), per_clip)
                except (KeyboardInterrupt, BrokenPipeError):
                    raise
                except Exception as e:
                    if len(jobs) == 1:
                        raise
                    failed += 1
                    self._failed(job, e)
        if failed:
            _error(f"{failed} of {len(jobs)} clips failed")
            raise typer.Exit(1)

    def _failed(self, job: Optional[Job], e: Exception) -> None:
        if isinstance(e, VideoPoetError):
            _error(f"{job.label}: {e}" if job else str(e))
        else:
            _internal(e)

    def _write(self, vp: Any, job: Job, video: Any, fps: float, n_jobs: int, made_in: float) -> None:
        from model import video_io as V

        from .files import write_video

        start = time.perf_counter()
        # a command that pastes its result back at the input's resolution returns uint8 frames
        frames = video if getattr(video, "dtype", None) == "uint8" else V.upscale(V.to_uint8(video), self.size)
        make_parent(job.path, self.output, self.fmt, job.kind, n_jobs)
        write_video(frames, job.path, fps, job.kind, overwrite=self.overwrite, provenance=self.provenance(vp, job, frames, fps))
        self.report(vp, job, frames, fps, made_in + time.perf_counter() - start)

    def sampling_record(self, vp: Any) -> dict:
        """The sampling settings as a clip's record states them, prompt reading resolved to on/off."""
        return {**self.options.sampler_view(), "read_prompt": vp.reads_prompts(self.options)}

    def provenance(self, vp: Any, job: Job, frames: Any, fps: float) -> dict:
        """What made this clip, stored in the file (`videopoet info FILE` prints it and the command)."""
        t, h, w = frames.shape[:3]
        return {
            "tool": f"videopoet {__version__}", "command": self.command, "prompt": job.prompt, "seed": job.seed,
            "preset": vp.preset.name, "checkpoint_sha256": vp.checkpoint_sha256, "sampling": self.sampling_record(vp),
            "dtype": self.dtype,
            "frames": int(t), "fps": int(fps) if float(fps).is_integer() else float(fps), "width": int(w), "height": int(h),
            **vp.read_as(job.prompt, self.options),
            **{k: v for k, v in job.extra.items() if k != "input" or v != STDIO},
        }  # fmt: skip

    def report(self, vp: Any, job: Job, frames: Any, fps: float, taken: float) -> None:
        t, h, w = frames.shape[:3]
        where = "stdout" if job.path == STDIO else job.path
        if self.json:
            record = {
                "path": job.path,
                "prompt": job.prompt,
                **vp.read_as(job.prompt, self.options),
                "seed": job.seed,
                "preset": vp.preset.name,
                "checkpoint": str(vp.checkpoint) if vp.checkpoint else None,
                "checkpoint_hash": vp.checkpoint_hash,
                "frames": int(t),
                "fps": int(fps) if float(fps).is_integer() else float(fps),
                "width": int(w),
                "height": int(h),
                "seconds_taken": round(taken, 3),
                "sampling": self.sampling_record(vp),
                "command": self.command,
                **job.extra,
            }
            stream = sys.stderr if job.path == STDIO else sys.stdout
            stream.write(json.dumps(record) + "\n")
            stream.flush()
        elif self.human:
            sys.stderr.write(f"wrote {where} ({t} frames, {_fmt(fps)} fps, {w}x{h}, {taken:.1f} s)\n")
            sys.stderr.flush()


def _busy_others() -> int:
    """Other processes running on a CPU right now (Linux /proc/stat `procs_running`, minus this one)."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("procs_running"):
                    return max(0, int(line.split()[1]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_threads(requested: Optional[int] = None) -> int:
    """--threads, else $OMP_NUM_THREADS, else the CPUs this process may use (sched_getaffinity: a
    container or `taskset` limit counts, unlike torch's default of every core of the machine) less those
    other processes are busy on now. OpenMP threads that share a core with another busy process spin
    waiting for each other: on a loaded 2-core machine two threads made a clip 6x slower than one."""
    if requested:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cpus = max(1, os.cpu_count() or 1)
    return max(1, cpus - _busy_others())


def _short(text: str, n: int = 48) -> str:
    text = _one_line(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def _sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt) -> dict:
    """The sampling options as the generating commands take them (--cfg is the guidance scale)."""
    return dict(temperature=temperature, top_k=top_k, top_p=top_p, guidance=cfg, decoding=decoding, negative=negative, read_prompt=read_prompt)


def _setup(
    command: str, *, preset: str, checkpoint: Optional[str], device: str, output: Optional[str], fmt: Optional[str],
    threads: Optional[int] = None, dtype: str = "float32",
    size: Optional[int], overwrite: bool, quiet: bool, json_out: bool, seed: Optional[int], num: int, sampling: dict,
) -> Run:
    """Check every option that needs no model; load the preset (cheap: a YAML file)."""
    from model.config import load_preset

    if not 1 <= num <= MAX_NUM:
        raise InvalidInput(f"--num must be in 1..{MAX_NUM}, got {num}")
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise InvalidInput(f"--seed must be in 0..2^62, got {seed}")
    if size is not None and not (MIN_SIZE <= size <= MAX_SIZE and size % 2 == 0):
        raise InvalidInput(f"--size must be an even number in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    if not device.strip():
        raise InvalidInput("--device is empty")
    if dtype not in DTYPES:
        raise InvalidInput(f"--dtype must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}, got {dtype!r}")
    if dtype == "float16" and device.strip().startswith("cpu"):
        raise InvalidInput("--dtype float16 is not usable on a CPU (use bfloat16 or float32)")
    p = load_preset(preset)
    options = _sampling_options(p, sampling)
    if checkpoint is not None and not os.path.isfile(checkpoint):
        what = "is not a file" if os.path.exists(checkpoint) else "not found"
        raise VideoPoetError(f"checkpoint {what}: {checkpoint}")
    return Run(
        command=command, preset_arg=preset, preset=p, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output,
        fmt=fmt, size=size if size is not None else p.video.display_size, overwrite=overwrite, quiet=quiet,
        json=json_out, seed=options.seed if seed is None else seed, num=num, options=options,
    )


def _model_size(preset: Any) -> int:
    t = preset.tokenizer
    if t.height != t.width:
        raise VideoPoetError(f"preset '{preset.name}' has non-square frames ({t.width}x{t.height}); the CLI needs square ones")
    return t.height


def _read_image_input(path: str, preset: Any) -> Any:
    """IMAGE -> float (3, H, W) at the model's size: centre-cropped to a square, resized."""
    from model import video_io as V

    from .files import read_image

    image = read_image(path)
    frames = V.center_crop_resize(image[None], _model_size(preset))
    return V.from_uint8(frames)[0]


def _read_video_input(path: str, preset: Any, run: Run, max_seconds: Optional[float] = None) -> tuple:
    """INPUT -> (float (T, 3, H, W) at the model's size and the preset's fps, input seconds).
    A still image or a folder of frames (no timing) is taken as frames at the preset's fps."""
    from model import video_io as V

    frames = _read_video_frames(path, preset, run, max_seconds)
    return V.from_uint8(V.center_crop_resize(frames, _model_size(preset))), len(frames) / preset.video.fps


def _read_video_frames(path: str, preset: Any, run: Run, max_seconds: Optional[float] = None) -> Any:
    """INPUT -> uint8 (T, H, W, 3) at its own size, resampled to the preset's fps."""
    from model import video_io as V

    from .files import read_video

    max_frames = None
    if max_seconds is not None and path != STDIO and not os.path.isdir(path):
        _, probe_fps = V.read_video(path, max_frames=1)  # the frame rate, to stop decoding early
        if probe_fps > 0:
            max_frames = max(1, round(max_seconds * probe_fps)) + 1
    frames, fps_in = read_video(path, max_frames=max_frames)
    name = display_name(path)
    if max_seconds is not None and fps_in > 0:
        keep = max(1, round(max_seconds * fps_in))
        if len(frames) > keep:
            how_long = f"is longer than {_fmt(max_seconds)} s" if max_frames else f"lasts {len(frames) / fps_in:.2f} s"
            run.note(f"note: {name} {how_long}; using only its first {_fmt(max_seconds)} s (--max-seconds)")
            frames = frames[:keep]
    native = preset.video.fps
    if fps_in > 0:
        frames = V.resample_fps(frames, fps_in, native)
    if len(frames) > MAX_FRAMES:
        hint = "trim it first" if run.command == "extend" else "pass --max-seconds to use its start"
        raise InvalidInput(f"{name} lasts {len(frames) / native:.1f} s; at most {MAX_FRAMES / native:g} s can be used ({hint})")
    return frames


# ----------------------------------------------------------------------------- commands


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet generate \"a red circle moving right\"\n\n"
        "  videopoet generate \"a blue square falling\" --seconds 4 --fps 12 -o square.gif\n\n"
        "  videopoet generate \"a green ball\" --num 4 --seed 7 -o ball.mp4  (ball-1.mp4 to ball-4.mp4)\n\n"
        "  videopoet generate -f prompts.txt --json\n\n"
        "  videopoet generate \"a red circle\" --then \"it turns blue\" --seconds 5\n\n"
        "  videopoet generate \"a white triangle moving up\" -o - --format gif > up.gif"
    ),
)
def generate(
    prompt: Annotated[Optional[str], typer.Argument(metavar="PROMPT", help="What the clip shows. [bold]-[/] reads prompts from stdin, one per line.", show_default=False)] = None,
    prompts_file: Annotated[Optional[str], typer.Option("--prompts-file", "-f", metavar="FILE", help="Prompts, one per line (blank lines skipped); [bold]-[/] = stdin.")] = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seconds: SecondsOpt = None,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    then: Annotated[Optional[List[str]], typer.Option("--then", metavar="TEXT", rich_help_panel=_TIME, help="Prompt for the next window of a long clip (repeat for each later window; the last one repeats).")] = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    size: SizeOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Make a video from text.

    Clips longer than one model window (2 s) are made window by window, each continuing the last.
    """
    with _guard():
        _check_timing(seconds, frames, fps)
        then_prompts = [_check_text(t, "a --then prompt") for t in (then or [])]
        run = _setup("generate", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=size, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        prompts = _collect_prompts(prompt, prompts_file)
        out_fps = float(fps if fps is not None else run.preset.video.fps)
        n_frames = _frame_count(run.preset, seconds, frames, out_fps)
        _frames_note(run, n_frames, out_fps)
        extra = {"then": then_prompts} if then_prompts else {}
        jobs = run.plan([(p, i, extra) for p in prompts for i in range(num)], slug)

        def make(vp: Any, job: Job, tick: Any) -> Any:
            return vp.generate(job.prompt, frames=n_frames, fps=out_fps, seed=job.seed, then=then_prompts,
                               progress=tick, options=run.options)

        def make_batch(vp: Any, group: List[Job], tick: Any) -> List[Any]:
            return vp.generate_variations(group[0].prompt, [j.seed for j in group], frames=n_frames, fps=out_fps,
                                          then=then_prompts, progress=tick, options=run.options)  # fmt: skip

        run.execute(jobs, make, out_fps, make_batch)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet animate photo.png -p \"the ball rolls to the left\"\n\n"
        "  videopoet animate photo.jpg -p \"it spins\" --seconds 3 -o spin.gif\n\n"
        "  cat photo.png | videopoet animate - -p \"it falls\" -o - --format mp4 > fall.mp4\n\n"
        "The image is centre-cropped to a square and resized to the model's size (64x64)."
    ),
)
def animate(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="Image file (.png .jpg .webp .bmp); [bold]-[/] = stdin.", show_default=False)],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What happens in the clip.", show_default=False)],
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seconds: SecondsOpt = None,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    size: SizeOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Animate an image: a clip that starts from it and follows the prompt."""
    with _guard():
        _check_timing(seconds, frames, fps)
        text = _check_text(prompt, "the prompt")
        check_input(image)
        run = _setup("animate", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=size, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        out_fps = float(fps if fps is not None else run.preset.video.fps)
        n_frames = _frame_count(run.preset, seconds, frames, out_fps)
        _frames_note(run, n_frames, out_fps)
        jobs = run.plan([(text, i, {"input": image}) for i in range(num)], input_stem(image, text))
        picture = _read_image_input(image, run.preset)

        def make(vp: Any, job: Job, tick: Any) -> Any:
            return vp.animate(picture, job.prompt, frames=n_frames, fps=out_fps, seed=job.seed, progress=tick,
                              options=run.options)

        run.execute(jobs, make, out_fps)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet extend clip.mp4 -p \"the circle keeps moving right\" --seconds 2\n\n"
        "  videopoet extend clip.mp4 -p \"it slows down\" --then \"it stops\" --seconds 4 -o longer.mp4\n\n"
        "The input is centre-cropped to a square, resized to the model's size (64x64) and resampled "
        "to the preset's frame rate (8 fps); the output is the input followed by the new frames."
    ),
)
def extend(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="Video (.mp4 .webm .mov .gif ...) or image; [bold]-[/] = stdin.", show_default=False)],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What happens next.", show_default=False)],
    seconds: Annotated[float, typer.Option("--seconds", "-s", rich_help_panel=_TIME, help="Seconds to add.")] = 2.0,
    then: Annotated[Optional[List[str]], typer.Option("--then", metavar="TEXT", rich_help_panel=_TIME, help="Prompt for the next extension window (repeatable; the last one repeats).")] = None,
    fps: FpsOpt = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    size: SizeOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Continue a clip: the input, then SECONDS more of video following the prompt(s)."""
    with _guard():
        _check_timing(seconds, None, fps)
        prompts = [_check_text(prompt, "the prompt")] + [_check_text(t, "a --then prompt") for t in (then or [])]
        check_input(input)
        run = _setup("extend", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=size, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        native = run.preset.video.fps
        out_fps = float(fps if fps is not None else native)
        extra = {"input": input, "seconds": seconds, **({"then": prompts[1:]} if len(prompts) > 1 else {})}
        jobs = run.plan([(prompts[0], i, extra) for i in range(num)], input_stem(input, prompts[0]))
        video, _ = _read_video_input(input, run.preset, run)
        total = len(video) + round(seconds * native)
        if total > MAX_FRAMES:
            raise InvalidInput(f"the result would have {total} frames at {native} fps; at most {MAX_FRAMES}")

        def make(vp: Any, job: Job, tick: Any) -> Any:
            return vp.extend(video, prompts, seconds, fps=None if fps is None else out_fps, seed=job.seed,
                             progress=tick, options=run.options)

        run.execute(jobs, make, out_fps)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet stylize clip.mp4 --style \"a purple circle moving left\"\n\n"
        "  videopoet stylize dance.mp4 --style \"a red square\" --motion-only --max-seconds 4 -o out.gif\n\n"
        "The input is centre-cropped to a square, resized to the model's size (64x64) and resampled "
        "to the preset's frame rate (8 fps); the output has the input's duration at that rate."
    ),
)
def stylize(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="Video (.mp4 .webm .mov .gif ...); [bold]-[/] = stdin.", show_default=False)],
    style: Annotated[str, typer.Option("--style", help="The look to give the clip.", show_default=False)],
    motion_only: Annotated[bool, typer.Option("--motion-only", help="Keep only the motion (optical flow), not the layout: motion transfer.")] = False,
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", rich_help_panel=_TIME, help="Use only the first N seconds of the input (up to 150).")] = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    size: SizeOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Restyle a clip with text, keeping its layout and motion (or only its motion)."""
    with _guard():
        text = _check_text(style, "the style")
        _check_max_seconds(max_seconds)
        check_input(input)
        run = _setup("stylize", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=size, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        extra = {"input": input, "motion_only": motion_only, **({"max_seconds": max_seconds} if max_seconds else {})}
        jobs = run.plan([(text, i, extra) for i in range(num)], input_stem(input, text))
        video, _ = _read_video_input(input, run.preset, run, max_seconds)

        def make(vp: Any, job: Job, tick: Any) -> Any:
            return vp.stylize(video, job.prompt, motion_only=motion_only, seed=job.seed, progress=tick,
                              options=run.options)

        run.execute(jobs, make, float(run.preset.video.fps))


def _ints(text: str, n: int, option: str, form: str) -> List[int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != n:
        raise InvalidInput(f"{option} takes {form} as {n} whole numbers separated by commas, got {text!r}")
    return values


MAX_CANVAS = 2048  # px a side for outpaint's canvas


def _read_mask_image(path: str, width: int, height: int) -> Any:
    """A mask image the input's size -> (H, W) bool: light pixels (luma > 127) are remade."""
    import numpy as np
    import torch

    from model import video_io as V

    if not os.path.isfile(path):
        raise InvalidInput(f"--mask: {'not a file' if os.path.exists(path) else 'file not found'}: {path}")
    image = V.read_image(path)
    if image.shape[:2] != (height, width):
        raise InvalidInput(f"--mask is {image.shape[1]}x{image.shape[0]}; it must be the input's size, {width}x{height}")
    luma = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return torch.from_numpy(luma > 127)


def _masked_command(
    command: str, input: str, text: str, run: Run, max_seconds: Optional[float], extra: dict,
    build: Callable[[Any], tuple],
) -> None:
    """Shared body of inpaint/outpaint: read the input at its own size, build (frames, full-resolution
    mask, the output's box in those frames), make the model's view, run the task, paste the result back
    at the input's resolution and cut out the output's box."""
    import numpy as np

    from model import video_io as V
    from model.masks import check_mask, latent_cells, paste_back, pixel_to_model

    jobs = run.plan([(text, i, extra) for i in range(run.num)], input_stem(input, text))
    frames = _read_video_frames(input, run.preset, run, max_seconds)
    frames, full_mask, (oy, ox, oh, ow) = build(frames)
    if jobs[0].kind == "mp4" and (oh % 2 or ow % 2):  # H.264 (yuv420p) needs even sizes
        run.note(f"note: the output is {ow}x{oh}; MP4 needs even sizes, so it is written as {ow - ow % 2}x{oh - oh % 2}")
        oh, ow = oh - oh % 2, ow - ow % 2
    size = _model_size(run.preset)
    mask = pixel_to_model(full_mask, size)
    cells = latent_cells(mask, run.preset.tokenizer.spatial_stride)
    what = "--box" if "box" in extra else "--mask" if "mask" in extra else "the padding"
    check_mask(cells, what)
    view = V.from_uint8(V.center_crop_resize(frames, size))

    def make(vp: Any, job: Job, tick: Any) -> Any:
        fn = vp.inpaint if command == "inpaint" else vp.outpaint
        made = fn(view, mask, job.prompt, seed=job.seed, progress=tick, options=run.options)
        return np.ascontiguousarray(paste_back(frames, made, cells)[:, oy : oy + oh, ox : ox + ow])

    run.execute(jobs, make, float(run.preset.video.fps))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet inpaint clip.mp4 --box 16,16,32,32 -p \"a red circle moving right\"\n\n"
        "  videopoet inpaint clip.mp4 --mask region.png -p \"a blue square staying still\" -o fixed.gif\n\n"
        "The box (X,Y,W,H in the input's pixels) or the light pixels of the mask image are remade over "
        "the whole clip; every 8-px latent cell of the model's 64x64 view they touch is hidden from the "
        "model. The output keeps the input's size, and outside the region its pixels, blended into the "
        "new content over one latent cell. The model sees the input's centre square."
    ),
)
def inpaint(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="Video (.mp4 .webm .mov .gif ...); [bold]-[/] = stdin.", show_default=False)],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What belongs in the region (say the whole scene: colour, shape, motion).", show_default=False)],
    box: Annotated[Optional[str], typer.Option("--box", metavar="X,Y,W,H", help="The region to remake, in the input's pixels.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", metavar="IMAGE", help="An image the input's size; light pixels are remade.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", rich_help_panel=_TIME, help="Use only the first N seconds of the input (up to 150).")] = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Remake a region of a clip (a box or a mask) as the prompt says; the rest is kept."""
    with _guard():
        text = _check_text(prompt, "the prompt")
        if (box is None) == (mask is None):
            raise InvalidInput("give the region as --box X,Y,W,H or --mask IMAGE (one of them)")
        _check_max_seconds(max_seconds)
        rect = _ints(box, 4, "--box", "X,Y,W,H") if box is not None else None
        check_input(input)
        run = _setup("inpaint", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=None, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        extra = {"input": input, **({"box": rect} if rect else {"mask": mask}), **({"max_seconds": max_seconds} if max_seconds else {})}

        def build(frames: Any) -> tuple:
            from model.masks import box_mask

            H, W = frames.shape[1:3]
            return frames, (box_mask(tuple(rect), W, H) if rect else _read_mask_image(mask, W, H)), (0, 0, H, W)

        _masked_command("inpaint", input, text, run, max_seconds, extra, build)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  videopoet outpaint strip.mp4 --pad 16,0,16,0 -p \"a green square moving left\"\n\n"
        "  videopoet outpaint clip.mp4 --to 96x96 -p \"a white circle moving down\" -o wide.gif\n\n"
        "The input is placed on a larger canvas (--pad adds LEFT,TOP,RIGHT,BOTTOM pixels; --to centres "
        "it on a WxH canvas, at most 2048 a side) and the model makes the rest; the output is the canvas, "
        "the input pasted back where it lies. The model makes square clips: it sees the square around the "
        "canvas at 64x64, so a wide canvas gets fewer model pixels per input pixel."
    ),
)
def outpaint(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="Video (.mp4 .webm .mov .gif ...); [bold]-[/] = stdin.", show_default=False)],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What the whole scene shows (colour, shape, motion).", show_default=False)],
    pad: Annotated[Optional[str], typer.Option("--pad", metavar="L,T,R,B", help="Pixels to add on the left, top, right and bottom.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", metavar="WxH", help="Canvas size in pixels, the input centred on it.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", rich_help_panel=_TIME, help="Use only the first N seconds of the input (up to 150).")] = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    seed: SeedOpt = None,
    num: NumOpt = 1,
    temperature: TemperatureOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    cfg: CfgOpt = None,
    decoding: DecodingOpt = None,
    negative: NegativeOpt = None,
    read_prompt: ReadPromptOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    preset: PresetOpt = "tiny",
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    threads: ThreadsOpt = None,
) -> None:
    """Widen a clip: place it on a larger canvas and make the rest as the prompt says."""
    with _guard():
        text = _check_text(prompt, "the prompt")
        if (pad is None) == (to is None):
            raise InvalidInput("give the canvas as --pad L,T,R,B or --to WxH (one of them)")
        _check_max_seconds(max_seconds)
        margins = _ints(pad, 4, "--pad", "L,T,R,B") if pad is not None else None
        if margins is not None and min(margins) < 0:
            raise InvalidInput(f"--pad values must be >= 0, got {pad}")
        canvas = None
        if to is not None:
            m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", to)
            if not m:
                raise InvalidInput(f"--to takes WxH in pixels (e.g. 96x96), got {to!r}")
            canvas = (int(m.group(1)), int(m.group(2)))
        check_input(input)
        run = _setup("outpaint", preset=preset, checkpoint=checkpoint, device=device, dtype=dtype, threads=threads, output=output, fmt=fmt,
                     size=None, overwrite=overwrite, quiet=quiet, json_out=json_out, seed=seed, num=num,
                     sampling=_sampling(temperature, top_k, top_p, cfg, decoding, negative, read_prompt))
        extra = {"input": input, **({"pad": margins} if margins is not None else {"to": list(canvas)}),
                 **({"max_seconds": max_seconds} if max_seconds else {})}  # fmt: skip

        def build(frames: Any) -> tuple:
            import numpy as np
            import torch

            H, W = frames.shape[1:3]
            if margins is not None:
                left, top, right, bottom = margins
            else:
                cw, ch = canvas
                if cw < W or ch < H:
                    raise InvalidInput(f"--to {cw}x{ch} is smaller than the input ({W}x{H}); the canvas must hold it")
                left, top = (cw - W) // 2, (ch - H) // 2
                right, bottom = cw - W - left, ch - H - top
            cw, ch = W + left + right, H + top + bottom
            if (cw, ch) == (W, H):
                raise InvalidInput("the canvas is the input's own size; nothing to generate (--pad adds pixels, --to names a larger size)")
            if max(cw, ch) > MAX_CANVAS:
                raise InvalidInput(f"the canvas would be {cw}x{ch}; at most {MAX_CANVAS} px a side")
            # The model makes square clips: a wide or tall canvas is made as the square around it, then cut back.
            side = max(cw, ch)
            sy, sx = (side - ch) // 2, (side - cw) // 2
            y, x = sy + top, sx + left
            full = np.pad(frames, ((0, 0), (y, side - y - H), (x, side - x - W), (0, 0)), mode="edge")
            unknown = torch.ones(side, side, dtype=torch.bool)
            unknown[y : y + H, x : x + W] = False
            return full, unknown, (sy, sx, ch, cw)

        _masked_command("outpaint", input, text, run, max_seconds, extra, build)


def reproduce_command(p: dict) -> str:
    """The command line that makes the clip again from its provenance (same checkpoint needed)."""
    import shlex

    cmd = p.get("command", "generate")
    args = ["videopoet", cmd]
    prompt_flag = {"generate": None, "stylize": "--style"}.get(cmd, "--prompt")
    if "input" in p:
        args.append(p["input"])
    elif cmd != "generate":
        args.append("INPUT")  # it came from stdin
    args += [p.get("prompt", "")] if prompt_flag is None else [prompt_flag, p.get("prompt", "")]
    for t in p.get("then", []):
        args += ["--then", t]
    for key, flag in (("box", "--box"), ("pad", "--pad")):
        if key in p:
            args += [flag, ",".join(str(v) for v in p[key])]
    if "to" in p:
        args += ["--to", "x".join(str(v) for v in p["to"])]
    if "mask" in p:
        args += ["--mask", p["mask"]]
    if p.get("motion_only"):
        args.append("--motion-only")
    if "max_seconds" in p:
        args += ["--max-seconds", _fmt(p["max_seconds"])]
    if cmd == "extend" and "seconds" in p:
        args += ["--seconds", _fmt(p["seconds"])]
    elif cmd in ("generate", "animate"):
        args += ["--frames", str(p.get("frames")), "--fps", _fmt(p.get("fps", 8))]
    if cmd not in ("inpaint", "outpaint") and "width" in p:
        args += ["--size", str(p["width"])]
    args += ["--seed", str(p.get("seed", 0)), "--preset", str(p.get("preset", "tiny"))]
    if p.get("dtype", "float32") != "float32":
        args += ["--dtype", str(p["dtype"])]
    s = p.get("sampling", {})
    for key, flag in (("temperature", "--temperature"), ("top_k", "--top-k"), ("top_p", "--top-p"), ("guidance", "--guidance"),
                      ("cfg", "--guidance"), ("decoding", "--decoding"), ("negative", "--negative")):  # fmt: skip (cfg: files before 0.2)
        if key in s and s[key] not in ("", None):
            args += [flag, str(s[key])]
    if s.get("read_prompt") is not None:  # None: the default for that checkpoint
        args.append("--read-prompt" if s["read_prompt"] else "--literal")
    return " ".join(shlex.quote(str(a)) for a in args)


@app.command(
    epilog="Examples:\n\n  videopoet info clip.mp4\n\n  videopoet info clip.gif --json",
)
def info(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A clip videopoet wrote (.mp4, .gif, a PNG or a folder of PNG frames).", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the stored record as JSON.")] = False,
) -> None:
    """How a clip was made: prompt, seed, preset, sampling, checkpoint, and the command that makes it again."""
    with _guard():
        from model import video_io as V

        if file == STDIO:
            raise InvalidInput("info reads a file, not stdin")
        check_input(file)
        p = V.read_provenance(file)
        if p is None:
            raise VideoPoetError(f"{file} carries no videopoet record (not made by videopoet, or re-encoded since)")
        if json_out:
            typer.echo(json.dumps(p, indent=2))
            return
        for key in ("tool", "command", "prompt", "read_as", "seed", "preset", "checkpoint_sha256", "frames", "fps", "width", "height"):
            if key in p:
                typer.echo(f"{key + ':':<19}{p[key]}")
        s = p.get("sampling", {})
        typer.echo(f"{'sampling:':<19}" + ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in s.items()))
        for key in ("input", "then", "box", "mask", "pad", "to", "motion_only", "seconds", "max_seconds"):
            if key in p:
                typer.echo(f"{key + ':':<19}{p[key]}")
        typer.echo(f"{'reproduce:':<19}{reproduce_command(p)}")
        typer.echo(f"{'':<19}(the same clip needs the checkpoint with sha256 {str(p.get('checkpoint_sha256'))[:12]}...)")


# ----------------------------------------------------------------------------- presets

presets_app = typer.Typer(
    help="List the model presets, or print one with [bold]presets show NAME[/].",
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(presets_app, name="presets")


@presets_app.callback(
    invoke_without_command=True,
    epilog="Examples:\n\n  videopoet presets\n\n  videopoet presets show tiny",
)
def presets(ctx: typer.Context) -> None:
    """List the model presets: name, whether weights are installed, description."""
    if ctx.invoked_subcommand is not None:
        return
    with _guard():
        from model.config import list_presets, load_preset, presets_dir, weights_path

        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        table.add_column("preset", style="bold", no_wrap=True)
        table.add_column("weights", no_wrap=True)
        table.add_column("description")
        for name in list_presets():
            try:
                p = load_preset(name)
            except VideoPoetError as e:
                table.add_row(name, "-", f"(invalid preset: {e})")
                continue
            w = weights_path(p)
            status = "none shipped" if w is None else ("installed" if w.is_file() else "not installed")
            table.add_row(p.name, status, p.description)
        console = Console()
        console.print(table)
        console.print(f"\n(from {presets_dir()}; `videopoet presets show NAME` prints one)", markup=False, highlight=False)


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A preset name, or a YAML file.", show_default=False)],
) -> None:
    """Print a preset's YAML."""
    with _guard():
        from model.config import load_preset

        preset = load_preset(name)
        with open(preset.source, encoding="utf-8") as f:
            text = f.read()
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# ----------------------------------------------------------------------------- training commands

from . import training  # noqa: E402  (cheap: imports typer only)

training.register(app)
