"""`videopoet eval`: how well a checkpoint follows prompts, read back by the analytic analyser.

Every number comes from generated clips read with `model.analysis.read_clip` (no learned judge), on
prompts and clips kept out of training: colour/shape/motion combinations never trained on, wordings and
sentence shapes never trained on, and procedural clips from a seed training never drew from.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np
import torch

from .analysis import adherence, psnr, read_clip
from .config import SamplingOptions
from .diagnostics import teacher_forced, token_properties
from .data import world
from .data.captions import canonical_caption, eval_prompts, parse_attributes
from .pipeline import VideoPoet
from .video_io import from_uint8, to_uint8

EVAL_SEED = 4242  # clips for video-to-video tasks; training draws from other seeds
TASKS = ("tokenizer", "lm", "t2v", "variety", "stylize", "motion", "animate", "extend", "inpaint", "outpaint")
Tick = Optional[Callable[[str], None]]


def _rate(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else float("nan")


def _summary(rows: list[dict]) -> dict:
    keys = ("color", "shape", "motion", "all")
    return {**{k: _rate([r[k] for r in rows]) for k in keys}, "n": len(rows)}


def eval_tokenizer(vp: VideoPoet, n: int = 64) -> dict:
    clips = world.render_clips(n, 999, vp.preset.tokenizer.frames, vp.preset.tokenizer.height, allow_held_out=True)[1]
    vals = []
    for c in clips:
        rec = to_uint8(vp.tokenizer.decode(vp.tokenizer.encode(from_uint8(c)[None]))[0])
        vals.append(psnr(c, rec))
    out = {"psnr_db": float(np.mean(vals)), "n": n, "token_properties": token_properties(vp.tokenizer)}
    if vp.tokenizer.reference_blend is not None:  # the same ids decoded with a true frame 0-80 frames before
        t = vp.preset.tokenizer
        refs, pairs = world.reference_pairs(n, 999, t.frames, t.height)
        with_ref, plain = [], []
        for r, c in zip(refs, pairs):
            ids = vp.tokenizer.encode(from_uint8(c)[None])  # encoded once, decoded both ways
            with_ref.append(psnr(c, to_uint8(vp.tokenizer.decode(ids, from_uint8(r[None]))[0])))
            plain.append(psnr(c, to_uint8(vp.tokenizer.decode(ids)[0])))
        out |= {"reference_psnr_db": float(np.mean(with_ref)), "reference_pairs_psnr_db_ids_alone": float(np.mean(plain))}
    return out


def eval_t2v(vp: VideoPoet, kind: str, limit: Optional[int] = None, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    rows, steady, secs = [], [], []
    prompts = eval_prompts(kind)[:limit]
    for i, (prompt, c, s, m) in enumerate(prompts):
        t0 = time.time()
        clip = to_uint8(vp.generate(prompt, seed=seed + i, options=options))
        secs.append(time.time() - t0)
        r = read_clip(clip)
        rows.append({"prompt": prompt, **vp.read_as(prompt, options), **adherence(r, c, s, m),  # cached: not timed
                     "read": [r.color, r.shape, r.motion]})  # fmt: skip
        steady.append(r.steadiness)
        if tick:
            tick(f"{kind} {i + 1}/{len(prompts)}")
    # how often the prompt reader's rewrite names the prompt's true attributes (where it rewrote one)
    rewrites = [(parse_attributes(r["read_as"]), truth[1:]) for r, truth in zip(rows, prompts) if "read_as" in r]
    return {**_summary(rows), "steadiness": float(np.mean(steady)), "seconds_per_clip": float(np.mean(secs)),
            "rewritten": len(rewrites), "rewrites_right": sum(a == b for a, b in rewrites), "clips": rows}  # fmt: skip


def eval_variety(vp: VideoPoet, n_prompts: int = 8, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    """Different seeds, same prompt: how often start position or size visibly differ."""
    combos = [c for c in sorted(world.HELD_OUT_COMBOS)][:n_prompts]
    differ, dists = [], []
    for i, (c, s, m) in enumerate(combos):
        reads = [read_clip(to_uint8(vp.generate(canonical_caption(c, s, m), seed=seed + k, options=options))) for k in (11, 12)]
        p = [next((x for x in r.centroids if x is not None), None) for r in reads]
        a = [max(r.areas) for r in reads]
        if None in p:
            differ.append(False)
            continue
        d = float(np.hypot(p[0][0] - p[1][0], p[0][1] - p[1][1]))
        dists.append(d)
        differ.append(d > 0.05 or abs(a[0] - a[1]) > 0.2 * max(a))
        if tick:
            tick(f"variety {i + 1}/{len(combos)}")
    return {"differ": _rate(differ), "mean_start_distance": float(np.mean(dists)) if dists else float("nan"), "n": len(combos)}


def _source_clips(vp: VideoPoet, n: int, clip_seed: int = EVAL_SEED) -> list[tuple[world.Scene, np.ndarray]]:
    rng = np.random.default_rng(clip_seed)
    t = vp.preset.tokenizer
    out = []
    for i in range(n):
        scene = world.sample_scene(rng, t.frames, motion=world.MOTIONS[i % 4], allow_held_out=True)  # moving clips
        out.append((scene, world.render(scene, t.frames, t.height)))
    return out


def _other(values, value, i):
    rest = [v for v in values if v != value]
    return rest[i % len(rest)]


def eval_stylize(vp: VideoPoet, n: int = 20, motion_only: bool = False, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    """stylize: a new colour on the source's layout and motion. motion: a new colour and shape, the source's motion."""
    rows = []
    for i, (scene, clip) in enumerate(_source_clips(vp, n)):
        color = _other(world.COLORS_LIST, scene.color, i)
        shape = _other(world.SHAPES, scene.shape, i) if motion_only else scene.shape
        prompt = canonical_caption(color, shape, scene.motion)
        out = to_uint8(vp.stylize(from_uint8(clip), prompt, motion_only=motion_only, seed=seed + i, options=options))
        r = read_clip(out)
        rows.append({"prompt": prompt, "source_motion": scene.motion, **adherence(r, color, shape, scene.motion), "read": [r.color, r.shape, r.motion]})
        if tick:
            tick(f"{'motion' if motion_only else 'stylize'} {i + 1}/{n}")
    return _summary(rows) | {"clips": rows}


def eval_animate(vp: VideoPoet, n: int = 20, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    rows, gaps = [], []
    for i, (scene, clip) in enumerate(_source_clips(vp, n)):
        image = from_uint8(clip[:1])[0]
        out = to_uint8(vp.animate(image, canonical_caption(scene.color, scene.shape, scene.motion), seed=seed + i, options=options))
        recon = to_uint8(vp.tokenizer.decode(vp.tokenizer.encode(image[None, None]))[0])[0]
        gaps.append(psnr(clip[0], recon) - psnr(clip[0], out[0]))
        r = read_clip(out)
        rows.append({**adherence(r, scene.color, scene.shape, scene.motion), "read": [r.color, r.shape, r.motion]})
        if tick:
            tick(f"animate {i + 1}/{n}")
    return _summary(rows) | {"frame0_psnr_gap_db": float(np.max(gaps)), "clips": rows}


def eval_extend(vp: VideoPoet, n: int = 10, seconds: float = 10.0, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0,
                clip_seed: int = EVAL_SEED) -> dict:  # fmt: skip
    """Extend a 17-frame clip to `seconds`; at every window seam the object keeps colour and shape and
    its centroid step stays within 2x the median step. `seams_kept` is the same reading per seam (8 per
    clip at 10 s): a clip keeps its object only if every seam does, so the two together say whether the
    misses are a few windows in many clips or many windows in a few; `clips` says which clips (prompt,
    background, object size) and which seams; `seams_kept_at_wall` / `seams_kept_clear` split the seams
    by whether the object meets the frame's edge there (`edge_gap`). clip_seed: another value draws other
    source clips (for choosing settings on clips the eval does not use)."""
    keep, smooth, seam_keep, seam_wall, rows = [], [], [], [], []
    fps = vp.preset.video.fps
    for i, (scene, clip) in enumerate(_source_clips(vp, n, clip_seed)):
        add = seconds - (len(clip) - 1) / fps
        prompt = canonical_caption(scene.color, scene.shape, scene.motion)
        out = to_uint8(vp.extend(from_uint8(clip), prompt, add, seed=seed + i, options=options))
        seams = list(range(len(clip), len(out), 8))
        ok_keep, ok_smooth, lost = True, True, []
        for j, sm in enumerate(seams):
            seg = out[max(0, sm - 8) : sm + 9]
            r = read_clip(seg)
            seam_keep.append(r.color == scene.color and r.shape == scene.shape)
            seam_wall.append(edge_gap(seg, scene.background) <= WALL_PX)
            ok_keep &= seam_keep[-1]
            if not seam_keep[-1]:
                lost.append({"seam": j, "read": [r.color, r.shape], "at_wall": seam_wall[-1]})
            cs = [c for c in r.centroids]
            steps = [np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(cs, cs[1:]) if a is not None and b is not None]
            k = min(len(seg) - 1, sm - max(0, sm - 8)) - 1  # the step into the seam frame
            if steps and cs[k] is not None and cs[k + 1] is not None:
                step = np.hypot(cs[k + 1][0] - cs[k][0], cs[k + 1][1] - cs[k][1])
                ok_smooth &= step <= 2 * max(np.median(steps), 0.01)
            else:
                ok_smooth = False
        keep.append(ok_keep)
        smooth.append(ok_smooth)
        rows.append({"prompt": prompt, "background": scene.background, "size": round(scene.size, 3), "kept": bool(ok_keep),
                     "smooth": bool(ok_smooth), "lost": lost})  # fmt: skip
        if tick:
            tick(f"extend {i + 1}/{n}")
    at_wall = [k for k, w in zip(seam_keep, seam_wall) if w]
    clear = [k for k, w in zip(seam_keep, seam_wall) if not w]
    return {"keeps_color_shape": _rate(keep), "smooth_seams": _rate(smooth), "seams_kept": _rate(seam_keep),
            "seams": len(seam_keep), "seams_at_wall": len(at_wall), "seams_kept_at_wall": _rate(at_wall),
            "seams_kept_clear": _rate(clear), "n": n, "seconds": seconds, "clips": rows}  # fmt: skip


WALL_PX = 0  # a seam is "at a wall" when the object comes within this many pixels of the frame's edge


def edge_gap(clip: np.ndarray, background: str, min_area: int = 8) -> int:
    """Fewest pixels between the object (the largest blob clearly off the background, RGB distance > 60)
    and the frame's edge over a uint8 (T, H, W, 3) clip's frames; a large number if no frame has one.
    The world keeps a circle about a pixel clear of the wall it bounces off at 64 px (a square 2-3, a
    triangle's corners touch); a decoded object is a pixel wider, so 0 (it touches the frame's edge)
    reads a generated object at a wall, where `extend` loses a seam about twice as often (eval/study/README.md)."""
    import cv2

    bg = np.array(world.BACKGROUNDS[background], dtype=np.float32)
    dist = np.sqrt(((clip.astype(np.float32) - bg) ** 2).sum(-1))
    _, H, W = dist.shape
    gap = H + W
    for frame in dist:
        _, _, stats, _ = cv2.connectedComponentsWithStats((frame > 60).astype(np.uint8))
        blobs = [s for s in stats[1:] if s[4] >= min_area]
        if blobs:
            x, y, w, h, _ = max(blobs, key=lambda s: s[4])
            gap = min(gap, x, y, W - x - w, H - y - h)
    return int(gap)


def _object_mask(scene: world.Scene, clip: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: pixels that differ from the scene's background (the object)."""
    bg = np.array(world.BACKGROUNDS[scene.background], dtype=np.int16)
    return np.abs(clip.astype(np.int16) - bg).sum(-1) > 30


def eval_inpaint(vp: VideoPoet, n: int = 20, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    """Hide a box covering the object in the middle frames (one latent cell of margin), prompt the scene's
    caption: the analyser reads colour/shape/motion of the whole output. Outside the hidden cells, PSNR
    against the input for the tokenizer's reconstruction, the model's own decoded output (blend off) and
    what the command writes (the input pasted back, blended over one cell)."""
    from .masks import blend, latent_cells

    rows, gaps, raw_out, rec_out, written_out = [], [], [], [], []
    t = vp.preset.tokenizer
    cell = t.spatial_stride
    for i, (scene, clip) in enumerate(_source_clips(vp, n)):
        obj = _object_mask(scene, clip)[len(clip) // 2 - 3 : len(clip) // 2 + 4].any(0)
        ys, xs = np.nonzero(obj)
        mask = torch.zeros(t.height, t.width, dtype=torch.bool)
        if len(ys):
            mask[max(0, ys.min() - cell) : ys.max() + cell + 1, max(0, xs.min() - cell) : xs.max() + cell + 1] = True
        cells = latent_cells(mask, cell)
        if cells.all() or not cells.any():
            continue
        prompt = canonical_caption(scene.color, scene.shape, scene.motion)
        made = vp.inpaint(from_uint8(clip), mask, prompt, seed=seed + i, blend=False, options=options)
        outside = ~cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1).numpy()
        rec = to_uint8(vp.tokenizer.decode(vp.tokenizer.encode(from_uint8(clip)[None]))[0])
        raw = to_uint8(made)
        p_raw, p_rec = psnr(clip[:, outside], raw[:, outside]), psnr(clip[:, outside], rec[:, outside])
        raw_out.append(p_raw)
        rec_out.append(p_rec)
        gaps.append(p_rec - p_raw)
        w = to_uint8(blend(from_uint8(clip), made, cells))  # what inpaint returns (blend on), without sampling again
        p_out = psnr(clip[:, outside], w[:, outside])
        written_out.append(p_out)
        r = read_clip(w)
        rows.append({"prompt": prompt, **adherence(r, scene.color, scene.shape, scene.motion), "read": [r.color, r.shape, r.motion],
                     "hidden_cells": int(cells.sum()), "outside_psnr_db": p_raw, "outside_recon_psnr_db": p_rec,
                     "outside_written_psnr_db": p_out})  # fmt: skip
        if tick:
            tick(f"inpaint {i + 1}/{n}")
    return _summary(rows) | {
        "outside_psnr_db": float(np.mean(raw_out)), "outside_recon_psnr_db": float(np.mean(rec_out)),
        "outside_gap_db_mean": float(np.mean(gaps)), "outside_gap_db_max": float(np.max(gaps)),
        "outside_written_psnr_db": float(np.mean(written_out)),
        "outside_written_gap_db_max": float(np.max([a - b for a, b in zip(rec_out, written_out)])), "clips": rows,
    }  # fmt: skip


SEAM_FLOOR = 2.0  # grey levels: a mean step across a border below 2/255 is not visible, whatever the truth's


def _border_step(video: np.ndarray, columns: tuple[int, ...]) -> float:
    """Mean absolute step between the two pixel columns either side of each border column."""
    v = video.astype(np.float32)
    return float(np.mean([np.abs(v[:, :, x] - v[:, :, x - 1]).mean() for x in columns]))


def eval_outpaint(vp: VideoPoet, n: int = 20, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    """Keep a centre strip half the width, make the rest from the scene's caption: the analyser reads the
    motion of the whole output (the track continues into the border), and the mean absolute step across
    the strip's borders is compared with the ground truth's at the same columns (no visible seam: at most
    2x, the truth's step counted as at least SEAM_FLOOR grey levels, since over a flat background it is ~0)."""
    rows, ratios = [], []
    t = vp.preset.tokenizer
    W = t.width
    x0, x1 = W // 4, W - W // 4
    mask = torch.ones(t.height, W, dtype=torch.bool)
    mask[:, x0:x1] = False
    for i, (scene, clip) in enumerate(_source_clips(vp, n)):
        canvas = clip.copy()
        canvas[:, :, :x0] = canvas[:, :, x0 : x0 + 1]  # the unknown part never reaches the model; fill it plainly
        canvas[:, :, x1:] = canvas[:, :, x1 - 1 : x1]
        prompt = canonical_caption(scene.color, scene.shape, scene.motion)
        out = to_uint8(vp.outpaint(from_uint8(canvas), mask, prompt, seed=seed + i, options=options))
        step, gt_step = _border_step(out, (x0, x1)), _border_step(clip, (x0, x1))
        ratio = step / max(gt_step, SEAM_FLOOR)
        ratios.append(ratio)
        r = read_clip(out)
        rows.append({"prompt": prompt, **adherence(r, scene.color, scene.shape, scene.motion), "read": [r.color, r.shape, r.motion],
                     "border_step": step, "gt_border_step": gt_step, "seam_ratio": ratio})  # fmt: skip
        if tick:
            tick(f"outpaint {i + 1}/{n}")
    return _summary(rows) | {"seam_ratio_mean": float(np.mean(ratios)), "seam_ratio_max": float(np.max(ratios)),
                             "seam_ok": _rate([r <= 2.0 for r in ratios]), "seam_floor_grey_levels": SEAM_FLOOR,
                             "border_step_mean": float(np.mean([r["border_step"] for r in rows])),
                             "gt_border_step_mean": float(np.mean([r["gt_border_step"] for r in rows])), "clips": rows}  # fmt: skip


def _repo_relative(path) -> str:
    """A checkpoint path as the report records it: relative to the repository, never a machine path."""
    from pathlib import Path

    if path is None:
        return "none"
    p, root = Path(path).resolve(), Path(__file__).resolve().parent.parent
    return str(p.relative_to(root)) if p.is_relative_to(root) else p.name


def run_eval(vp: VideoPoet, tasks: tuple[str, ...] = TASKS, limit: Optional[int] = None, tick: Tick = None, options: Optional[SamplingOptions] = None, seed: int = 0) -> dict:
    """Every task's clip i is sampled with seed `seed + i` (the variety check's two with seed + 11 and + 12):
    another `seed` draws the same prompts and clips again, which shows how far a rate moves by chance."""
    torch.manual_seed(0)
    report: dict = {"preset": vp.preset.name, "checkpoint": _repo_relative(vp.checkpoint), "checkpoint_hash": vp.checkpoint_hash,
                    "sampling": {**vp.sampling_options(options).sampler_view(), "read_prompt": vp.reads_prompts(options)},
                    "seed": seed}  # fmt: skip
    t0 = time.time()
    small = limit or 20
    if "tokenizer" in tasks:
        report["tokenizer"] = eval_tokenizer(vp)
    if "lm" in tasks:
        report["lm_teacher_forced"] = teacher_forced(vp)
    if "t2v" in tasks:
        report["t2v_heldout_combos"] = eval_t2v(vp, "heldout_combos", limit, tick, options=options, seed=seed)
        report["t2v_unseen_wordings"] = eval_t2v(vp, "unseen_wordings", limit, tick, options=options, seed=seed)
    if "variety" in tasks:
        report["variety"] = eval_variety(vp, min(8, small), tick, options=options, seed=seed)
    if "stylize" in tasks:
        report["stylize"] = eval_stylize(vp, small, False, tick, options=options, seed=seed)
    if "motion" in tasks:
        report["motion_transfer"] = eval_stylize(vp, small, True, tick, options=options, seed=seed)
    if "animate" in tasks:
        report["animate"] = eval_animate(vp, small, tick, options=options, seed=seed)
    if "extend" in tasks:
        report["extend"] = eval_extend(vp, max(1, small // 2), 10.0, tick, options=options, seed=seed)
    if "inpaint" in tasks:
        report["inpaint"] = eval_inpaint(vp, small, tick, options=options, seed=seed)
    if "outpaint" in tasks:
        report["outpaint"] = eval_outpaint(vp, small, tick, options=options, seed=seed)
    report["eval_seconds"] = time.time() - t0
    return report
