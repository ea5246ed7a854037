"""`videopoet data`, `videopoet train` and `videopoet eval`: registered onto the main app."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Make training data.", no_args_is_help=True)
train_app = typer.Typer(help="Train the tokenizer, then the LM (also under torchrun for several processes).", no_args_is_help=True)


class StepReporter:
    """A rich progress bar on a terminal; a plain line every `every` steps in a log file."""

    def __init__(self, label: str, every: int = 25):
        self.label, self.every = label, every
        self.tty = sys.stderr.isatty()
        self.progress = None
        self.t0 = time.time()

    def __enter__(self):
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
            self.progress.__enter__()
            self.task = self.progress.add_task(self.label, total=None)
        return self

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "task")
        if self.progress is not None:
            self.progress.update(self.task, completed=step, total=total, description=f"{self.label} {shown}")
        elif step % self.every == 0 or step == total:
            print(f"[{time.time() - self.t0:7.0f}s] {self.label} step {step}/{total} {shown}", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run(fn):
    """Run a command body under the CLI's guard: user errors become one line on stderr and an exit status."""
    from .guard import guard

    with guard():
        return fn()


@data_app.command("synth")
def data_synth(
    out: Path = typer.Option(..., "--out", help="Folder to write clips/ and captions.jsonl into."),
    count: int = typer.Option(1000, "--count", min=1, max=1_000_000),
    seed: int = typer.Option(0, "--seed"),
    preset: str = typer.Option("tiny", "--preset", help="Size, frames and fps come from this preset."),
) -> None:
    """Write N procedural clips (MP4) and captions.jsonl, in the format `train --data DIR` reads.

    Example: videopoet data synth --out world --count 500 --seed 1
    """

    def body():
        from model.config import load_preset
        from model.data.sources import write_world

        p = load_preset(preset)
        with StepReporter("synth", every=100) as rep:
            index = write_world(out, count, seed, p.tokenizer.frames, p.tokenizer.height, p.video.fps,
                                progress=lambda i, n: rep(i, n, {}))  # fmt: skip
        _log(f"wrote {count} clips and {index}")

    _run(body)


NO_COMPILER = "--compile: torch.compile builds C++ kernels on CPU and found no compiler (g++, clang++ or $CXX); install one or leave --compile out"


def _has_cpp_compiler() -> bool:
    """Whether torch.compile can build its CPU kernels here (a GPU run compiles with Triton instead)."""
    import os
    import shutil

    import torch

    if torch.cuda.is_available():
        return True
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c)


def _check_optimizer(optimizer: str) -> None:
    from model.errors import InvalidInput
    from model.train.common import OPTIMIZERS

    if optimizer not in OPTIMIZERS:
        raise InvalidInput(f"--optimizer: one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")


@train_app.command("tokenizer")
def train_tokenizer_cmd(
    preset: str = typer.Option("tiny", "--preset"),
    data: str = typer.Option("world:4000", "--data", help="world:N (procedural clips) or a folder with captions.jsonl."),
    data_seed: int = typer.Option(1, "--data-seed"),
    steps: int = typer.Option(5000, "--steps", min=1),
    batch: int = typer.Option(8, "--batch", min=1),
    lr: float = typer.Option(1e-3, "--lr"),
    out: Path = typer.Option(Path("runs/tiny"), "--out"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/tokenizer-state.safetensors."),
    seed: int = typer.Option(0, "--seed"),
    entropy_anneal: int = typer.Option(0, "--entropy-anneal", min=0, help="Steps over which the LFQ entropy weight falls from 3x to 1x (0 = constant)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this tokenizer.safetensors (fine-tune)."),
    decoder_only: bool = typer.Option(False, "--decoder-only", help="Freeze the encoder, so every token id stays as it was (an LM trained on them stays valid)."),
    warmup: int = typer.Option(200, "--warmup", min=0, help="Steps of linear learning-rate warm-up."),
    edge_weight: float = typer.Option(0.0, "--edge-weight", min=0.0, help="Add this multiple of an L1 loss on image gradients (edges) to the L2 loss (0 = L2 alone)."),
    reference: bool = typer.Option(False, "--reference", help="Train only the reference blend of the --init tokenizer (outlines taken from a true frame, for extend and animate); everything else stays as it was."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the forward pass: faster steps after a minute or two of compiling (needs a C++ compiler on CPU)."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw, or muon: Muon on the hidden convolutions and AdamW on the rest, same --lr (README, Training your own)."),
) -> None:
    """Train the causal LFQ video tokenizer (writes OUT/tokenizer.safetensors).

    Example: videopoet train tokenizer --preset tiny --data world:4000 --steps 5000 --out runs/tiny

    Sharper decoding for shipped ids: videopoet train tokenizer --init runs/tiny/tokenizer.safetensors --decoder-only --out runs/dec

    Outlines from a true frame: videopoet train tokenizer --init runs/dec/tokenizer.safetensors --reference --data world:2000 --steps 600 --out runs/ref
    """

    def body():
        import numpy as np
        import torch

        from model.config import load_preset
        from model.controls import control_video
        from model.data.sources import load_clips
        from model.errors import InvalidInput
        from model.train.tokenizer import train_tokenizer

        torch.set_num_threads(max(1, torch.get_num_threads()))
        p = load_preset(preset)
        t = p.tokenizer
        _check_optimizer(optimizer)
        if reference:
            if init is None:
                raise InvalidInput("--reference trains the blend of a trained tokenizer: give that tokenizer with --init")
            if not init.is_file():
                raise InvalidInput(f"--init: file not found: {init}")
            if decoder_only or edge_weight or entropy_anneal or compile_ or optimizer != "adamw":
                raise InvalidInput("--reference trains only the blend: --decoder-only, --edge-weight, --entropy-anneal, --compile "
                                   "and --optimizer do not apply")  # fmt: skip
            return _train_reference(p, data, data_seed, init, out, steps, batch, lr, warmup, seed, resume)
        if compile_ and not _has_cpp_compiler():
            raise InvalidInput(NO_COMPILER)
        clipset = load_clips(data, t.frames, t.height, p.video.fps, data_seed, _log)
        n_ctrl = max(1, len(clipset.clips) // 4)
        controls = np.stack([control_video(c, motion_only=i % 2 == 1) for i, c in enumerate(clipset.clips[:n_ctrl])])
        from model.data.world import render_clips

        held = render_clips(64, 999, t.frames, t.height, allow_held_out=True)[1] if data.startswith("world:") else clipset.clips[-16:]
        _log(f"{len(clipset.clips)} clips, {n_ctrl} control videos, skipped: {clipset.skipped or 'none'}")
        with StepReporter("tokenizer") as rep:
            r = train_tokenizer(t, clipset.clips, controls, held, out, steps, batch, lr, warmup=warmup, seed=seed, resume=resume,
                                entropy_anneal=entropy_anneal, init=init, decoder_only=decoder_only, edge_weight=edge_weight,
                                on_progress=rep, log=_log, compile=compile_, optimizer=optimizer)  # fmt: skip
        if r.get("stopped"):
            _log(f"stopped at step {r['step']}: run the same command with --resume to continue")
        _log(f"done: step {r['step']}, held-out PSNR {r.get('psnr_held_out', float('nan')):.2f} dB -> {out / 'tokenizer.safetensors'}")

    _run(body)


def _train_reference(p, data, data_seed, init, out, steps, batch, lr, warmup, seed, resume) -> None:
    from model.data import world
    from model.data.sources import load_clips, world_count
    from model.train.reference import train_reference_blend

    t = p.tokenizer
    count = world_count(data)
    if count is not None:  # a reference frame, then the scene up to ten seconds on
        refs, clips = world.reference_pairs(count, data_seed, t.frames, t.height)
        held_refs, held = world.reference_pairs(32, 999, t.frames, t.height)
    else:  # a user's clips: each clip's own first frame
        clips = load_clips(data, t.frames, t.height, p.video.fps, data_seed, _log).clips
        refs, held_refs, held = clips[:, 0], clips[-16:, 0], clips[-16:]
    _log(f"{len(clips)} reference pairs")
    with StepReporter("reference blend") as rep:
        r = train_reference_blend(t, init, refs, clips, held_refs, held, out, steps, batch, lr, warmup=min(warmup, steps // 4), seed=seed,
                                  resume=resume, on_progress=rep, log=_log)  # fmt: skip
    if r.get("stopped"):
        _log(f"stopped at step {r['step']}: run the same command with --resume to continue")
    _log(f"done: step {r['step']}, held-out PSNR {r.get('psnr_held_out_reference', float('nan')):.2f} dB with the reference "
         f"({r.get('psnr_held_out', float('nan')):.2f} without) -> {out / 'tokenizer.safetensors'}")  # fmt: skip


@train_app.command("lm")
def train_lm_cmd(
    preset: str = typer.Option("tiny", "--preset"),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="tokenizer.safetensors from `train tokenizer`."),
    data: str = typer.Option("world:16000", "--data", help="world:N or a folder with captions.jsonl."),
    data_seed: int = typer.Option(2, "--data-seed"),
    controls: int = typer.Option(4000, "--controls", min=0, help="Clips whose control videos are made (stylize/motion tasks)."),
    wall_clips: Optional[int] = typer.Option(None, "--wall-clips", min=0, help="world:N data only: extra clips whose object bounces off a wall, for the continuation task (so `extend` keeps objects in view); default N/4, 0 for none."),
    steps: int = typer.Option(2000, "--steps", min=1),
    batch: int = typer.Option(24, "--batch", min=1),
    lr: float = typer.Option(1.5e-3, "--lr"),
    out: Path = typer.Option(Path("runs/tiny"), "--out"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/lm-state.safetensors."),
    seed: int = typer.Option(0, "--seed"),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this videopoet checkpoint's LM weights (fine-tune; same tokenizer)."),
    warmup: int = typer.Option(200, "--warmup", min=0, help="Steps of linear learning-rate warm-up."),
    mixture: str = typer.Option("", "--mixture", help="Task shares to change, e.g. continue=0.3 (the other tasks share the rest in their default proportions)."),
    context_noise: float = typer.Option(0.0, "--context-noise", min=0.0, max=1.0, help="Up to this fraction of a continuation sample's known ids replaced by random ids (robustness to its own earlier windows)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the forward pass: faster steps after about a minute of compiling per task layout (needs a C++ compiler on CPU)."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw, or muon: Muon on the transformer blocks' matrices and AdamW on the rest, same --lr (README, Training your own)."),
) -> None:
    """Train the prefix LM on the multi-task mixture (writes OUT/videopoet.safetensors).

    The data is tokenized once and cached in OUT/lm-data-*.safetensors.
    Example: videopoet train lm --tokenizer runs/tiny/tokenizer.safetensors --data world:16000 --steps 2000
    Several processes: torchrun --nproc_per_node 2 -m videopoet_cli train lm ...
    """

    def body():
        import hashlib
        import os

        from model.checkpoint import file_hash, load_into, read_checkpoint
        from model.config import load_preset
        from model.data.sources import load_clips, world_count
        from model.text import TextEncoder
        from model.tokenizer import VideoTokenizer
        from model.train.lm import parse_mixture, pretokenize, train_lm

        from model.errors import InvalidInput

        p = load_preset(preset)
        t = p.tokenizer
        shares = parse_mixture(mixture) if mixture.strip() else None
        if not tokenizer.is_file():
            raise InvalidInput(f"--tokenizer: file not found: {tokenizer}")
        if init is not None and not init.is_file():
            raise InvalidInput(f"--init: file not found: {init}")
        if compile_ and not _has_cpp_compiler():
            raise InvalidInput(NO_COMPILER)
        _check_optimizer(optimizer)
        count = world_count(data)
        walls = 0
        if count is not None:
            walls = wall_clips if wall_clips is not None else count // 4
        elif wall_clips:
            raise InvalidInput("--wall-clips: wall clips come from the procedural world (--data world:N), not a folder")
        spec = f"{data}|{data_seed}|{controls}" + (f"|walls={walls}" if walls else "")  # old keys stay valid
        key = hashlib.sha256(f"{spec}|{file_hash(tokenizer)}".encode()).hexdigest()[:10]
        data_path = Path(out) / f"lm-data-{key}.safetensors"
        rank = int(os.environ.get("RANK", "0"))
        if not data_path.exists() and rank == 0:
            clipset = load_clips(data, t.frames, t.height, p.video.fps, data_seed, _log, wall_clips=walls)
            _log(f"{len(clipset.clips)} clips (skipped: {clipset.skipped or 'none'}); tokenizing once -> {data_path}")
            tok = VideoTokenizer(t)
            tensors, _ = read_checkpoint(tokenizer)
            load_into(tok, tensors, "tokenizer", tokenizer)
            enc = TextEncoder(p.lm.max_text_tokens)
            n_main = len(clipset.clips) - clipset.continue_only
            pretokenize(tok, enc.encode, clipset.clips, clipset.captions, min(controls, n_main), data_path, log=_log,
                        continue_only=clipset.continue_only)  # fmt: skip
            del clipset
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist

            from model.train.common import init_distributed

            init_distributed()
            dist.barrier()
        with StepReporter("lm") as rep:
            r = train_lm(p, data_path, tokenizer, out, steps, batch, lr, warmup=warmup, seed=seed, resume=resume, init=init,
                         mixture=shares, context_noise=context_noise, on_progress=rep, log=_log, compile=compile_,
                         optimizer=optimizer)  # fmt: skip
        if rank == 0 and r.get("stopped"):
            _log(f"stopped at step {r['step']}: run the same command with --resume to continue")
        if rank == 0:
            _log(f"done: step {r['step']}, loss {r.get('loss_ema', float('nan')):.3f} -> {Path(out) / 'videopoet.safetensors'}")

    _run(body)


@train_app.command("export")
def export_cmd(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="videopoet.safetensors from `train lm`."),
    out: Path = typer.Option(..., "--out", help="Where to write the shippable weights."),
    preset: str = typer.Option("tiny", "--preset"),
    dtype: str = typer.Option("bf16", "--dtype", help="Storage type: bf16 (half the size) or fp32."),
    decoder: Optional[Path] = typer.Option(None, "--decoder", help="Take the tokenizer decoder (and its reference blend, if any) from this tokenizer.safetensors (trained with --decoder-only or --reference on the same encoder)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Write weights for shipping: checked against the preset, stored in bf16 (loaded back as fp32).

    Example: videopoet train export --checkpoint runs/tiny/videopoet.safetensors --out presets/tiny.safetensors
    """

    def body():
        import torch

        import dataclasses

        from model.checkpoint import compare_configs
        from model.config import load_preset
        from model.errors import InvalidInput
        from model.pipeline import VideoPoet

        from .files import refuse_existing

        types = {"bf16": torch.bfloat16, "fp32": None}
        if dtype not in types:
            raise InvalidInput(f"--dtype must be bf16 or fp32, got {dtype!r}")
        refuse_existing(out, overwrite)
        if not checkpoint.is_file():
            raise InvalidInput(f"--checkpoint: file not found: {checkpoint}")
        vp = VideoPoet.from_pretrained(str(checkpoint))  # as trained; checked against the preset once the decoder is in
        if decoder is not None:
            vp.replace_decoder(decoder)
        want = load_preset(preset)
        compare_configs({"tokenizer": dataclasses.asdict(want.tokenizer), "lm": dataclasses.asdict(want.lm)},
                        {"tokenizer": dataclasses.asdict(vp.preset.tokenizer), "lm": dataclasses.asdict(vp.preset.lm)}, out)  # fmt: skip
        vp.save(out, dtype=types[dtype])
        _log(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {dtype})")

    _run(body)


def eval_cmd(
    preset: str = typer.Option("tiny", "--preset"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Weights to evaluate (default: the preset's shipped weights)."),
    tasks: str = typer.Option("tokenizer,lm,t2v,variety,stylize,motion,animate,extend,inpaint,outpaint", "--tasks", help="Comma-separated subset."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most N prompts/clips per task (quick look)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", "--cfg", help="Classifier-free guidance scale (default: the preset's)."),
    temperature: Optional[float] = typer.Option(None, "--temperature"),
    top_k: Optional[int] = typer.Option(None, "--top-k"),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling mass in (0, 1]; 1 = off."),
    decoding: Optional[str] = typer.Option(None, "--decoding", help="sequential or jacobi (parallel decoding)."),
    read_prompt: Optional[bool] = typer.Option(None, "--read-prompt/--literal", help="Rewrite prompts into training words first (model.prompt_reader) or give the LM each prompt as written. Default: reading on for the preset's shipped weights, off for other checkpoints."),
    seed: int = typer.Option(0, "--seed", min=0, help="Clip i of every task is sampled with seed SEED + i: another value draws the same prompts and clips again, to see how far a rate moves by chance."),
    out: Path = typer.Option(Path("eval.json"), "--out", "-o", help="JSON report."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Measure prompt adherence (colour, shape, motion), steadiness, seed variety, the video-to-video
    tasks, the tokenizer's PSNR and token properties, and the LM's teacher-forced cross-entropy per latent
    frame, on prompts and clips kept out of training; print a table, write JSON.

    Example: videopoet eval --out eval.json
    Example: videopoet eval --tasks t2v --seed 100 --out eval-seed100.json
    Example: videopoet eval --checkpoint runs/x/tiny.safetensors --read-prompt --out x.json
    """

    def body():
        import json

        from rich.console import Console
        from rich.table import Table

        from model.errors import InvalidInput
        from model.evaluate import TASKS, run_eval
        from model.pipeline import VideoPoet

        from .files import refuse_existing

        chosen = tuple(t.strip() for t in tasks.split(",") if t.strip())
        bad = [t for t in chosen if t not in TASKS]
        if bad or not chosen:
            raise InvalidInput(f"--tasks: unknown {bad or '(none)'}; choose from {', '.join(TASKS)}")
        refuse_existing(out, overwrite)
        if not out.parent.is_dir():
            raise InvalidInput(f"output folder does not exist: {out.parent}")
        vp = VideoPoet.from_pretrained(preset, checkpoint)
        options = vp.sampling_options(guidance=guidance, temperature=temperature, top_k=top_k, top_p=top_p, decoding=decoding,
                                      read_prompt=read_prompt)
        console = Console(stderr=True)
        with console.status("evaluating") as status:
            report = run_eval(vp, chosen, limit, tick=lambda s: status.update(f"evaluating: {s}"), options=options, seed=seed)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(out)
        table = Table(title=f"videopoet eval ({vp.preset.name}, {vp.checkpoint_hash})")
        for col in ("measure", "value", "n"):
            table.add_column(col)
        for name, part in report.items():
            if not isinstance(part, dict) or "n" not in part and "psnr_db" not in part:
                continue
            for k, v in part.items():
                if isinstance(v, float) and k != "n":
                    table.add_row(f"{name}.{k}", f"{v:.1%}" if k in ("color", "shape", "motion", "all", "differ", "keeps_color_shape", "smooth_seams", "seams_kept", "seams_kept_at_wall", "seams_kept_clear", "seam_ok") else f"{v:.3g}", str(part.get("n", "")))
        Console().print(table)
        props = report.get("tokenizer", {}).get("token_properties")
        if props:
            _log(f"tokens: constant clip -> {props['constant_max_ids']} id(s) per latent frame "
                 f"(same in every latent frame: {props['constant_same_every_latent_frame']}); still scenes keep "
                 f"{props['still_same_as_previous_latent_frame']:.1%} of ids; one-cell shifts move "
                 f"{props['one_cell_shift_moves_ids']:.1%} of ids")  # fmt: skip
        diag = report.get("lm_teacher_forced")
        if diag:
            ce = " ".join(f"{v:.2f}" for v in diag["cross_entropy_per_latent_frame"])
            top1 = " ".join(f"{v:.0%}" for v in diag["top1_per_latent_frame"])
            _log(f"LM teacher-forced per latent frame: cross-entropy {ce}; top-1 {top1}")
        _log(f"wrote {out}")

    _run(body)


def register(app: typer.Typer) -> None:
    """Add the data/train/eval commands to `app`."""
    app.add_typer(data_app, name="data")
    app.add_typer(train_app, name="train")
    app.command("eval")(eval_cmd)
