"""Retrain tokenizer and LM from scratch inside a fixed wall-time budget on one GPU: the whole recipe for a
preset (default: eval/study/fine.yaml, a 16 x 16 grid of 4-px cells, which the outline study in
README.md here points to for small circles), by the project's own trainers. Usage:

  python eval/study/gpu_retrain.py OUT [--tok-seconds 180] [--lm-seconds 270] [--deadline 555] [--preset eval/study/fine.yaml]

Why a script and not the two `train` commands: on a machine lent for minutes, the CPU-side work (rendering
the world and its control videos, about 14 CPU-minutes for this data) must run in a process pool while the
GPU trains, and each trainer's step count is set from a timing probe so the whole run ends inside its
budget. The data, losses, mixture and schedules are the trainers' own; world clips are sampled exactly as
`world:N` samples them (same scenes and captions), only rendered in parallel.

Writes OUT/tokenizer.safetensors and OUT/fine.safetensors (tokenizer + LM, bf16, what `train export`
writes) and OUT/run.json (steps, timings, losses, held-out PSNR). On a lent machine that cannot install the
text encoder: `python eval/study/minilm_shim.py .minilm` here, carry `.minilm`, and there run
`PYTHONPATH=$PWD/.minilm:$PWD python3 eval/study/gpu_retrain.py $OUT --work /tmp/work --deadline 555`.
Then, here: `python eval/study/extend_ceiling.py --tokenizer OUT/tokenizer.safetensors --preset
eval/study/fine.yaml` says what `extend` could reach with that tokenizer (a 2,000-step one trained on this
CPU: 91.5% of 130 clips, the shipped one 83.1%), before `videopoet eval --preset eval/study/fine.yaml
--checkpoint OUT/fine.safetensors` measures the whole model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- CPU side: the world, rendered in a pool (numpy and OpenCV only: the pool forks before CUDA starts) ---


def _render(args):
    """Render scenes, and with `controls` set ("both" or "alternate", see _controls) their control videos."""
    from model.data import world

    scenes, frames, size, controls = args
    clips = np.stack([world.render(s, frames, size) for s in scenes])
    return (clips, *_controls((clips, controls))) if controls else (clips,)


def _controls(args):
    import cv2

    from model.controls import control_video

    cv2.setNumThreads(1)
    clips, kinds = args  # kinds: "alternate" (tokenizer data, as `train tokenizer`) or "both" (LM data)
    if kinds == "alternate":
        return (np.stack([control_video(c, motion_only=i % 2 == 1) for i, c in enumerate(clips)]),)
    return np.stack([control_video(c) for c in clips]), np.stack([control_video(c, motion_only=True) for c in clips])


def scenes_and_captions(count: int, seed: int, frames: int, wall_clips: int = 0):
    """The scenes and captions `model.data.sources.world_clips` draws (same generators, same order)."""
    from model.data import world
    from model.data.captions import caption

    rng = np.random.default_rng(seed)
    scenes = [world.sample_scene(rng, frames) for _ in range(count)]
    cap_rng = np.random.default_rng([seed, 7])
    caps = [[caption(s, cap_rng, "train") for _ in range(3)] for s in scenes]
    if wall_clips:
        w_rng = np.random.default_rng(seed + 1_000_003)
        motions = world.MOTIONS[:-1]
        w_scenes = [world.sample_scene(w_rng, frames, motion=motions[w_rng.integers(len(motions))], at_wall=True) for _ in range(wall_clips)]
        wc_rng = np.random.default_rng([seed, 8])
        caps += [[caption(s, wc_rng, "train") for _ in range(3)] for s in w_scenes]
        scenes = scenes + w_scenes
    return scenes, caps


def render_async(pool, scenes, frames, size, controls=0, kinds="both", chunk=250):
    """Chunks of (clips,), or for the first `controls` scenes (a multiple of chunk, even) (clips, controls...)."""
    return [pool.apply_async(_render, ((scenes[i : i + chunk], frames, size, kinds if i < controls else ""),))
            for i in range(0, len(scenes), chunk)]  # fmt: skip


def gather(results, part: int = 0) -> np.ndarray:
    got = [r.get() for r in results]
    return np.concatenate([g[part] for g in got if len(g) > part])


# --- GPU side ---


def steps_in(budget_s: float, fn, probe_steps: int, floor: int) -> int:
    """How many steps fit in budget_s, timed by `fn(probe_steps)` (a throwaway run of the same trainer)."""
    t = time.time()
    fn(probe_steps)
    per = (time.time() - t) / probe_steps
    n = max(floor, int(budget_s / per))
    log(f"probe: {per * 1000:.1f} ms/step -> {n} steps in {budget_s:.0f} s")
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default=str(Path(__file__).with_name("fine.yaml")))
    ap.add_argument("--tok-seconds", type=float, default=180)
    ap.add_argument("--lm-seconds", type=float, default=270)
    ap.add_argument("--tok-clips", type=int, default=16000)
    ap.add_argument("--lm-clips", type=int, default=24000)
    ap.add_argument("--controls", type=int, default=6000)
    ap.add_argument("--wall-clips", type=int, default=6000)
    ap.add_argument("--tok-batch", type=int, default=32)
    ap.add_argument("--tok-lr", type=float, default=1e-3)
    ap.add_argument("--lm-batch", type=int, default=24)
    ap.add_argument("--lm-lr", type=float, default=1.5e-3)
    ap.add_argument("--min-steps", type=int, default=100, help="Fewest steps per trainer, whatever the probes say.")
    ap.add_argument("--probe-steps", type=int, default=30)
    ap.add_argument("--deadline", type=float, default=0, help="Seconds from start by which the run must end (0: none): the LM's budget shrinks to fit.")
    ap.add_argument("--work", type=Path, default=None, help="Scratch folder (default OUT/work).")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    work = a.work or a.out / "work"
    work.mkdir(parents=True, exist_ok=True)

    from model.config import load_preset

    p = load_preset(a.preset)
    t = p.tokenizer
    pool = mp.get_context("fork").Pool(a.workers)  # before torch touches CUDA
    tok_scenes, _ = scenes_and_captions(a.tok_clips, 1, t.frames)
    n_ctrl = -(-max(1, a.tok_clips // 4) // 250) * 250  # as `train tokenizer`: a quarter of the clips
    tok_jobs = render_async(pool, tok_scenes, t.frames, t.height, controls=n_ctrl, kinds="alternate")
    lm_scenes, lm_caps = scenes_and_captions(a.lm_clips, 2, t.frames, a.wall_clips)
    a.controls = -(-a.controls // 250) * 250
    lm_jobs = render_async(pool, lm_scenes, t.frames, t.height, controls=a.controls)
    tok_clips, tok_ctrl = gather(tok_jobs), gather(tok_jobs, 1)
    log(f"tokenizer data: {len(tok_clips)} clips, {len(tok_ctrl)} control videos")

    import torch

    from model.checkpoint import load_into, read_checkpoint, save_checkpoint
    from model.data.world import render_clips
    from model.pipeline import VideoPoet
    from model.text import TextEncoder
    from model.tokenizer import VideoTokenizer
    from model.train.lm import pretokenize, train_lm
    from model.train.tokenizer import train_tokenizer

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    held = render_clips(64, 999, t.frames, t.height, allow_held_out=True)[1]
    quiet = lambda *_: None  # noqa: E731
    run: dict = {"preset": Path(a.preset).name, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}

    # tokenizer
    def tok(steps, out=work / "tok-probe", **kw):
        return train_tokenizer(t, tok_clips, tok_ctrl, held, out, steps, a.tok_batch, a.tok_lr, seed=0, log=quiet, **kw)

    tok_steps = steps_in(a.tok_seconds, lambda n: tok(n, eval_every=10**9, save_every=10**9), a.probe_steps, a.min_steps)
    ts = time.time()
    r = tok(tok_steps, out=work / "tok", save_every=1000, eval_every=max(500, tok_steps // 4), warmup=200)
    run["tokenizer"] = {"steps": tok_steps, "batch": a.tok_batch, "lr": a.tok_lr, "clips": len(tok_clips), "seconds": time.time() - ts,
                        "psnr_held_out": r.get("psnr_held_out")}  # fmt: skip
    log(f"tokenizer: {tok_steps} steps in {time.time() - ts:.0f} s, held-out PSNR {r.get('psnr_held_out'):.2f} dB")
    tok_path = work / "tok" / "tokenizer.safetensors"
    tokenizer = VideoTokenizer(t)
    tensors, _ = read_checkpoint(tok_path)
    load_into(tokenizer, tensors, "tokenizer", tok_path)
    save_checkpoint(a.out / "tokenizer.safetensors", {"tokenizer": tokenizer}, {"tokenizer": dataclasses.asdict(t)}, "tokenizer",
                    dtype=torch.bfloat16)  # fmt: skip

    # LM data: the pool has been rendering it all along
    lm_clips, style, motion = (gather(lm_jobs, k) for k in range(3))
    n_main = a.lm_clips
    pool.close()
    log(f"LM data rendered: {len(lm_clips)} clips ({a.wall_clips} at a wall), {len(style)} x 2 control videos")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer.to(device)
    data_path = work / "lm-data.safetensors"
    pretokenize(tokenizer, TextEncoder(p.lm.max_text_tokens, device=device).encode, lm_clips, lm_caps, min(a.controls, n_main), data_path,
                batch=128, log=log, continue_only=a.wall_clips, control_videos=(style, motion))  # fmt: skip
    del lm_clips, style, motion

    def lm(steps, out=work / "lm-probe", **kw):
        return train_lm(p, data_path, tok_path, out, steps, a.lm_batch, a.lm_lr, log=quiet, **kw)

    budget = a.lm_seconds
    if a.deadline:  # no more than is left, less the probe, the export and a margin
        budget = min(budget, a.deadline - (time.time() - T0) - 40)
    lm_steps = steps_in(budget, lambda n: lm(n, save_every=10**9), a.probe_steps, a.min_steps)
    ts = time.time()
    r = lm(lm_steps, out=work / "lm", save_every=1000, warmup=200)
    run["lm"] = {"steps": lm_steps, "batch": a.lm_batch, "lr": a.lm_lr, "clips": n_main, "wall_clips": a.wall_clips, "controls": a.controls,
                 "seconds": time.time() - ts, "loss_ema": r.get("loss_ema")}  # fmt: skip
    log(f"LM: {lm_steps} steps in {time.time() - ts:.0f} s, loss (EMA) {r.get('loss_ema'):.3f}")
    VideoPoet.from_pretrained(a.preset, work / "lm" / "videopoet.safetensors").save(a.out / f"{p.name}.safetensors", dtype=torch.bfloat16)
    run["wall_seconds"] = time.time() - T0
    (a.out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    log(f"done in {time.time() - T0:.0f} s -> {a.out / (p.name + '.safetensors')}")


if __name__ == "__main__":
    main()
