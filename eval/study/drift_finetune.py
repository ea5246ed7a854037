"""Teach continuation to undo its own drift (exposure bias), for `extend`. Two steps:

  python eval/study/drift_finetune.py data OUT.safetensors [N_SCENES] [WINDOWS]
  python eval/study/drift_finetune.py train DRIFT.safetensors LM_DATA.safetensors OUT_DIR [STEPS] [SHARE]

Why: an extension's windows are conditioned on the model's own earlier windows, decoded and encoded
again; a small outline drifts a little in each and is never drawn back (README.md here). The LM only ever
learned to continue *true* clips. `data` takes world scenes (data seed 3, never held-out combinations),
runs `extend`'s own loop on their first 17 frames with the shipped weights and sampling defaults, and
keeps, after each window, the context `extend` would condition on next (its own frames, encoded) with, as
the target, the world's next window for the scene as the model left it (`expert_clip`: the same object
and direction, moved to where the model has it, in the same layout). `train` fine-tunes the shipped LM on
the usual mixture, where a share of the continuation batches come from these pairs (DAgger-style: the
learner's own states, the expert's next step). Measured in README.md here (extend): not shipped.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from model import tasks  # noqa: E402
from model.checkpoint import atomic_save, read_checkpoint  # noqa: E402
from model.data import world  # noqa: E402
from model.data.captions import caption  # noqa: E402
from model.pipeline import VideoPoet, context_frames, tokens_per_window  # noqa: E402
from model.sampling import sample_jacobi  # noqa: E402
from model.train.lm import TokenData  # noqa: E402
from model.analysis import read_clip  # noqa: E402
from model.video_io import from_uint8, to_uint8  # noqa: E402

DATA_SEED = 3  # training scenes (1 and 2 made the shipped data); the eval's come from 4242


def expert_clip(scene: world.Scene, made: torch.Tensor, start: int, frames: int, size: int):
    """The world's clip of frames start..start+frames-1 for the scene as the model left it: the same
    object, background, speed and direction (after any bounce so far), its centre moved to where the model's
    last context frame has it, so the true future continues the model's context without a jump.
    Returns (uint8 clip, pixels between the model's and the world's centre), or None if the model lost it."""
    cf = made.shape[0]
    last = read_clip(to_uint8(made.clamp(-1, 1))).centroids[-1]
    if last is None:
        return None
    L = start + cf - 1
    (x0, y0), (x1, y1) = scene.center(L), scene.center(L + 1)
    dx, dy = world._DIRS[scene.motion]
    if scene.motion != "still":  # the direction it moves in now: reversed by an odd number of bounces
        sign = np.sign((x1 - x0) * dx + (y1 - y0) * dy) or 1.0
        dx, dy = dx * sign, dy * sign
    motion = {v: k for k, v in world._DIRS.items()}[(dx, dy)]
    lo, hi = world.walls(scene.size)
    mx, my = (min(max(v, lo), hi) for v in last)
    back = scene.speed * (cf - 1)
    moved = dataclasses.replace(scene, motion=motion, x0=mx - dx * back, y0=my - dy * back)
    return world.render(moved, frames, size), float(np.hypot(mx - x0, my - y0)) * size


@torch.no_grad()
def make_data(out: Path, n_scenes: int = 1200, windows: int = 3, batch: int = 24) -> None:
    vp = VideoPoet.from_pretrained("tiny")
    opts = vp.sampling_options()
    t = vp.preset.tokenizer
    cf, n_new = context_frames(t), tokens_per_window(t)
    rng = np.random.default_rng(DATA_SEED)
    scenes = [world.sample_scene(rng, t.frames) for _ in range(n_scenes)]
    cap_rng = np.random.default_rng([DATA_SEED, 7])
    caps = [[caption(s, cap_rng, "train") for _ in range(3)] for s in scenes]
    ctxs, outs, owner, offsets = [], [], [], []
    t0 = time.time()
    for b in range(0, n_scenes, batch):
        idx = list(range(b, min(b + batch, n_scenes)))
        video = torch.stack([from_uint8(world.render(scenes[i], t.frames, t.height)) for i in idx])
        ctx = vp._encode(video[:, -cf:])
        states, valid, pooled = vp.encode_text([caps[i][0] for i in idx])
        for k in range(1, windows + 1):
            seq = tasks.build("continue", states, valid, pooled, n_new, visual_in=ctx)
            gens = [torch.Generator().manual_seed(1_000_003 * i + k) for i in idx]
            new = sample_jacobi(vp.lm, seq, opts, generator=gens)
            full = vp._decode(torch.cat([ctx, new], 1))
            video = torch.cat([video, full[:, cf:]], 1)
            ctx = vp._encode(video[:, -cf:])
            start = video.shape[1] - cf  # the context's first frame, as an index into the world's track
            for j, i in enumerate(idx):
                got = expert_clip(scenes[i], video[j, -cf:], start, t.frames, t.height)
                if got is None:  # the model lost the object: no true future to teach
                    continue
                offsets.append(got[1])
                ctxs.append(ctx[j].to(torch.int16))
                outs.append(vp._encode(from_uint8(got[0])[None])[0, -n_new:].to(torch.int16))
                owner.append(i)
        print(f"{b + len(idx)}/{n_scenes} scenes, {len(owner)} pairs, {time.time() - t0:.0f} s", flush=True)
    from model.text import shared_text_encoder

    enc = shared_text_encoder(vp.preset.lm.max_text_tokens)
    flat = [c for cc in caps for c in cc]
    s, v, p = enc.encode(flat)
    own = torch.tensor(owner)
    tensors = {
        "ctx": torch.stack(ctxs), "out": torch.stack(outs),
        "text_states": s.to(torch.float16).view(n_scenes, 3, *s.shape[1:])[own],
        "text_valid": v.view(n_scenes, 3, -1)[own],
        "text_pooled": p.to(torch.float16).view(n_scenes, 3, -1)[own],
    }  # fmt: skip
    atomic_save(tensors, out, {"format": "videopoet", "format_version": "1", "kind": "drift-data", "windows": str(windows)})
    q = np.percentile(offsets, [50, 75, 90])
    print(f"wrote {len(own)} pairs of {n_scenes * windows} windows to {out} ({time.time() - t0:.0f} s); "
          f"model vs world centre, px, p50/75/90: {q.round(1).tolist()}")


class DriftData(TokenData):
    """TokenData whose continuation batches come, with probability `share`, from the drift pairs."""

    def __init__(self, drift: Path, share: float, *args, **kw):
        super().__init__(*args, **kw)
        d, _ = read_checkpoint(drift)
        self.d_ctx, self.d_out = d["ctx"].long(), d["out"].long()
        self.d_states, self.d_valid, self.d_pooled = d["text_states"], d["text_valid"], d["text_pooled"]
        self.share = share

    def batch(self, task, B, rng, device):
        if task != "continue" or rng.random() >= self.share:
            return super().batch(task, B, rng, device)
        idx = torch.from_numpy(rng.integers(len(self.d_ctx), size=B))
        cap = torch.from_numpy(rng.integers(3, size=B))
        has_text = torch.from_numpy(rng.random(B) >= self.text_dropout)
        out = self.d_out[idx]
        seq = tasks.build("continue", self.d_states[idx, cap].float(), self.d_valid[idx, cap], self.d_pooled[idx, cap].float(),
                          out.shape[1], visual_in=self.d_ctx[idx], visual_out=out, has_text=has_text)  # fmt: skip
        return seq.to(device), out.to(device)


def finetune(drift: Path, lm_data: Path, out_dir: Path, steps: int = 500, share: float = 0.5) -> None:
    from model.config import load_preset, weights_path
    from model.train.lm import parse_mixture, train_lm

    preset = load_preset("tiny")
    shipped = weights_path(preset)
    data = DriftData(drift, share, lm_data, preset.tokenizer.tokens_per_latent_frame(), preset.lm.text_dropout)
    r = train_lm(preset, lm_data, shipped, out_dir, steps, batch=24, lr=2e-4, warmup=50, init=shipped,
                 mixture=parse_mixture("continue=0.24"), data=data, save_every=100,
                 on_progress=lambda s, n, m: print(f"step {s}/{n} loss {m['loss']:.3f} ema {m['loss_ema']:.3f}", flush=True) if s % 25 == 0 else None)  # fmt: skip
    print(r)


if __name__ == "__main__":
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "data":
        make_data(Path(sys.argv[2]), *(int(x) for x in sys.argv[3:5]))
    elif mode == "train":
        finetune(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), *(int(x) for x in sys.argv[5:6]), *(float(x) for x in sys.argv[6:7]))
    else:
        sys.exit(__doc__)
