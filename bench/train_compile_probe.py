"""Does `train lm --compile` / `train tokenizer --compile` pay on this machine? Each training run eager and
compiled, step by step.

    OMP_NUM_THREADS=2 python bench/train_compile_probe.py [--steps 32] [--tokenizer-steps 12] [--what lm,tokenizer]
    # idle machine; LM ~10 min, tokenizer ~3 min on 2 cores

LM: both runs are `model.train.lm.train_lm` on the tiny preset, batch 24, the default eight-task mixture,
the same seed (so the same batches in the same order), on a data file of random ids and random text
states (what the timing depends on is the layout, not the content). Tokenizer: `train_tokenizer`, batch 8
of world clips (one layout, so step 0 is the one that compiles). Prints one JSON object per model: the
wall of each run, its mean seconds per step over the steps whose layout (task, sequence length, prefix)
came up before (no compiling in either run), the one-off compile cost (the compiled run's extra wall on
the steps that met a layout for the first time), the largest relative gap between the two runs' losses,
and the steps it would take the compiled run to win back its compile time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import atomic_save
from model.config import load_preset
from model.train.lm import TokenData, train_lm
from model.train.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def random_data(path: Path, n: int, captions: int, preset) -> None:
    t, lm = preset.tokenizer, preset.lm
    g = torch.Generator().manual_seed(0)
    shape = (n, *t.latent_shape())
    ids = lambda: torch.randint(t.vocab_size, shape, generator=g).to(torch.int16)  # noqa: E731
    valid = torch.ones(n, captions, lm.max_text_tokens, dtype=torch.bool)
    valid[..., 8:] = torch.rand(n, captions, lm.max_text_tokens - 8, generator=g) < 0.5
    tensors = {
        "ids": ids(), "style_ids": ids(), "motion_ids": ids(),
        "text_states": torch.randn(n, captions, lm.max_text_tokens, lm.text_dim, generator=g).half(),
        "text_valid": valid,
        "text_pooled": torch.randn(n, captions, lm.text_dim, generator=g).half(),
    }  # fmt: skip
    atomic_save(tensors, path, {"format": "videopoet", "format_version": "1", "kind": "lm-data", "continue_only": "0"})


class RecordingData(TokenData):
    """TokenData that notes each step's layout (task, length, prefix): each new one is a new graph."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.layouts: list[tuple] = []

    def batch(self, task, B, rng, device):
        seq, target = super().batch(task, B, rng, device)
        self.layouts.append((task, seq.tokens.shape[1], seq.prefix_len))
        return seq, target


def timed(train) -> dict:
    """Run train(on_progress); the wall, each step's seconds (the first includes setting up) and losses."""
    stamps, losses = [time.perf_counter()], []

    def progress(step: int, total: int, metrics: dict) -> None:
        stamps.append(time.perf_counter())
        losses.append(metrics["loss"])

    train(progress)
    return {"wall": time.perf_counter() - stamps[0], "step_seconds": np.diff(stamps).tolist(), "losses": losses}


def run(preset, data: Path, out: Path, steps: int, compile: bool) -> dict:
    tokens = RecordingData(data, preset.tokenizer.tokens_per_latent_frame(), preset.lm.text_dropout)
    r = timed(lambda progress: train_lm(preset, data, ROOT / "presets" / "tiny.safetensors", out, steps, batch=24, lr=1e-3,
                                        warmup=10, save_every=10**9, on_progress=progress, log=lambda *_: None, data=tokens,
                                        compile=compile))  # fmt: skip
    return r | {"layouts": tokens.layouts}


def run_tokenizer(preset, out: Path, steps: int, compile: bool) -> dict:
    from model.data.sources import world_clips

    t = preset.tokenizer
    clips = world_clips(64, seed=1, frames=t.frames, size=t.height).clips
    return timed(lambda progress: train_tokenizer(t, clips, None, clips[:4], out, steps, batch=8, warmup=2, save_every=10**9,
                                                  eval_every=10**9, on_progress=progress, log=lambda *_: None, compile=compile))  # fmt: skip


def tokenizer_probe(preset, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        eager = run_tokenizer(preset, Path(tmp) / "eager", steps, compile=False)
        compiled = run_tokenizer(preset, Path(tmp) / "compiled", steps, compile=True)
    e, c = (statistics.fmean(r["step_seconds"][1:]) for r in (eager, compiled))  # step 0 compiles
    cost = compiled["step_seconds"][0] - eager["step_seconds"][0]
    return {
        "model": "tokenizer", "threads": torch.get_num_threads(), "steps": steps,
        "wall_s": {"eager": round(eager["wall"], 1), "compiled": round(compiled["wall"], 1)},
        "seconds_per_repeat_step": {"eager": round(e, 3), "compiled": round(c, 3)},
        "compiled_over_eager": round(c / e, 3),
        "compile_cost_s": round(cost, 1),
        "steps_to_win_back_compile": round(cost / (e - c)) if e > c else None,
        "max_relative_loss_gap": max(abs(a - b) / abs(a) for a, b in zip(eager["losses"], compiled["losses"])),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=32, help="LM steps per run")
    ap.add_argument("--tokenizer-steps", type=int, default=12)
    ap.add_argument("--what", default="lm,tokenizer")
    args = ap.parse_args()
    preset = load_preset("tiny")
    what = {w.strip() for w in args.what.split(",")}
    if "lm" in what:
        print(json.dumps(lm_probe(preset, args.steps), indent=1), flush=True)
    if "tokenizer" in what:
        print(json.dumps(tokenizer_probe(preset, args.tokenizer_steps), indent=1), flush=True)


def lm_probe(preset, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "lm-data.safetensors"
        random_data(data, 256, 4, preset)
        eager = run(preset, data, Path(tmp) / "eager", steps, compile=False)
        compiled = run(preset, data, Path(tmp) / "compiled", steps, compile=True)
    layout = compiled["layouts"]
    assert layout == eager["layouts"], "the two runs drew different batches"
    first = [s for s in range(steps) if layout[s] not in layout[:s]]
    repeats = [s for s in range(steps) if s not in first]  # a layout met before: no compiling
    mean = lambda r: statistics.fmean(r["step_seconds"][s] for s in repeats)  # noqa: E731
    e, c = mean(eager), mean(compiled)
    compile_cost = sum(compiled["step_seconds"][s] - eager["step_seconds"][s] for s in first)
    gap = max(abs(a - b) / abs(a) for a, b in zip(eager["losses"], compiled["losses"]))
    return {
        "model": "lm", "threads": torch.get_num_threads(), "steps": steps, "repeat_steps": len(repeats),
        "layouts_first_seen_at": {f"{layout[s][0]} ({layout[s][1]} tokens, prefix {layout[s][2]})": s for s in first},
        "wall_s": {"eager": round(eager["wall"], 1), "compiled": round(compiled["wall"], 1)},
        "seconds_per_repeat_step": {"eager": round(e, 3), "compiled": round(c, 3)},
        "compiled_over_eager": round(c / e, 3),
        "compile_cost_s": round(compile_cost, 1),
        "steps_to_win_back_compile": round(compile_cost / (e - c)) if e > c else None,
        "max_relative_loss_gap": gap,
    }  # fmt: skip


if __name__ == "__main__":
    main()
