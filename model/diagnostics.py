"""Cheap checks of what the tokens mean and of how the LM uses them (seconds, no sampling).

An LM can only learn "the next latent frame is this one, moved" if an id says *what* is in a cell, not
*where* the cell is. `token_properties` measures that on the interior cells (the border ring is left out:
its receptive field reaches past the frame): a constant clip must give one id everywhere and in every
latent frame, a still scene the same ids in every latent frame, and a scene moved by exactly one latent
cell the same ids moved by one cell. `teacher_forced` gives the LM's cross-entropy and top-1 accuracy per
latent frame on held-out clips: once ids are stable, later latent frames are far easier than frame 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from . import tasks
from .data import world
from .tokenizer import VideoTokenizer
from .video_io import from_uint8

DIAG_SEED = 4343  # scenes for these checks; training draws from other seeds


def _frames(clips: np.ndarray, device) -> torch.Tensor:
    """uint8 clips (B, T, H, W, 3) -> float (B, T, 3, H, W) in [-1, 1] on `device`."""
    return torch.stack([from_uint8(c) for c in clips]).to(device)


def _interior(ids: torch.Tensor) -> torch.Tensor:
    """(..., h, w) -> the cells off the border ring."""
    return ids[..., 1:-1, 1:-1]


def _still_scene(rng: np.random.Generator, frames: int, margin: float) -> world.Scene:
    """A still scene whose object stays inside [margin, 1 - margin] of the frame."""
    scene = world.sample_scene(rng, frames, motion="still", allow_held_out=True)
    lo, hi = margin + scene.size * 1.2, 1 - margin - scene.size * 1.2
    x, y = rng.uniform(lo, hi, size=2)
    return dataclasses.replace(scene, x0=float(x), y0=float(y))


@torch.no_grad()
def token_properties(tok: VideoTokenizer, n: int = 16, seed: int = DIAG_SEED) -> dict:
    """Measured on the tokenizer as it is (any weights). See the module docstring."""
    cfg = tok.cfg
    T, H, s = cfg.frames, cfg.height, cfg.spatial_stride
    device = next(tok.parameters()).device

    def enc(clips: np.ndarray) -> torch.Tensor:
        return tok.encode(_frames(clips, device)).cpu()

    constant = {}
    for name, rgb in world.BACKGROUNDS.items():
        ids = _interior(enc(np.broadcast_to(np.array(rgb, np.uint8), (1, T, H, H, 3)))[0])  # (T', h, w)
        per_frame = [set(f.flatten().tolist()) for f in ids]
        constant[name] = {"ids_per_latent_frame": max(len(p) for p in per_frame), "same_in_every_latent_frame": all(p == per_frame[0] for p in per_frame)}

    rng = np.random.default_rng(seed)
    still = np.stack([world.render(_still_scene(rng, T, 0.05), T, H) for _ in range(n)])
    still_ids = enc(still)
    used = len(set(still_ids.flatten().tolist()))
    ids = _interior(still_ids)
    still_same = float((ids[:, 1:] == ids[:, :-1]).float().mean())

    # one scene rendered a cell wider, then two crops one latent cell apart: the ids must move with it
    big = H + s
    wide = []
    for _ in range(n):
        scene = _still_scene(rng, T, (s + 2) / big)
        wide.append(world.render(scene, T, big)[:, :H])  # rows 0..H-1 of a (big x big) frame
    wide = np.stack(wide)
    a, b = enc(wide[:, :, :, :H]), enc(wide[:, :, :, s : s + H])
    shift_same = float((_interior(a)[..., 1:] == _interior(b)[..., :-1]).float().mean())
    return {
        "constant_clip": constant,
        "constant_max_ids": max(c["ids_per_latent_frame"] for c in constant.values()),
        "constant_same_every_latent_frame": all(c["same_in_every_latent_frame"] for c in constant.values()),
        "still_same_as_previous_latent_frame": still_same,
        "one_cell_shift_moves_ids": shift_same,
        "ids_used_by_still_scenes": used,
        "n": n,
    }


@torch.no_grad()
def teacher_forced(vp, n: int = 32, seed: int = DIAG_SEED) -> dict:
    """Cross-entropy (nats) and top-1 accuracy of the next id, per latent frame, text-to-video layout,
    canonical captions of held-out clips (including held-out combinations)."""
    from .data.captions import canonical_caption

    t = vp.preset.tokenizer
    scenes, clips = world.render_clips(n, seed, t.frames, t.height, allow_held_out=True)
    ids = vp.tokenizer.encode(_frames(clips, vp.device)).flatten(1)  # (n, T'*h*w)
    states, valid, pooled = vp.encode_text([canonical_caption(s.color, s.shape, s.motion) for s in scenes])
    seq = tasks.build("t2v", states, valid, pooled, ids.shape[1], visual_out=ids)
    vp.lm.eval()
    logits = vp.lm(seq).float()
    ce = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view(n, -1)
    top1 = (logits.argmax(-1) == ids).float()
    tpf = t.tokens_per_latent_frame()
    frames = ids.shape[1] // tpf
    per_ce = ce.view(n, frames, tpf).mean(dim=(0, 2)).tolist()
    per_top1 = top1.view(n, frames, tpf).mean(dim=(0, 2)).tolist()
    return {"cross_entropy_per_latent_frame": per_ce, "top1_per_latent_frame": per_top1,
            "cross_entropy": float(ce.mean()), "top1": float(top1.mean()), "n": n}  # fmt: skip
