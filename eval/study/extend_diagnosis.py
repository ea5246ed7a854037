"""Why `extend` loses objects: two measurements on clips the eval does not use.

1. Tokenizer round trip by shape and object size: the analyser's shape reading of decode(encode(clip))
   for 9-frame world clips (every source it reads right), per shape and size third.
2. One continuation window from a clean source context (the last 9 frames of a 17-frame clip, as the
   first `extend` window sees them), many seeds per clip: how often the window (the last context latent
   frame + the 8 new frames) keeps the object's colour and shape. A clip extended to 10 s passes 8 such
   windows, each one continuing the last, so with a keep rate q per window about q^8 of clips keep the
   object at every seam when a miss is never undone (the eval's misses are: they stay lost).

Usage: python eval/study/extend_diagnosis.py [--checkpoint PATH] [--decoder TOKENIZER.safetensors]
       python eval/study/extend_diagnosis.py --tokenizer TOKENIZER.safetensors --preset PRESET.yaml
         (part 1 only, for a tokenizer trained on its own: another size or vocabulary)
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from model.analysis import read_clip  # noqa: E402
from model.checkpoint import load_into, read_checkpoint  # noqa: E402
from model.config import load_preset  # noqa: E402
from model.data import world  # noqa: E402
from model.data.captions import canonical_caption  # noqa: E402
from model.pipeline import VideoPoet, context_frames, tokens_per_window  # noqa: E402
from model.tokenizer import VideoTokenizer  # noqa: E402
from model.video_io import from_uint8, to_uint8  # noqa: E402

ROUND_TRIP_SEED, WINDOW_SEED = 99, 31337  # the eval's clips come from EVAL_SEED 4242, training from 1 and 2
SIZE_BINS = ((0.10, 0.13), (0.13, 0.16), (0.16, 0.19))


def round_trip_by_size(tok: VideoTokenizer, n: int = 240, round_trip=None) -> None:
    """round_trip: clips (B, T, 3, H, W) -> reconstructions; default decode(encode(clips))."""
    round_trip = round_trip or (lambda x: tok.decode(tok.encode(x)))
    rng = np.random.default_rng(ROUND_TRIP_SEED)
    scenes = [world.sample_scene(rng, 9, motion=world.MOTIONS[j % len(world.MOTIONS)], allow_held_out=True) for j in range(n)]
    rows = []
    for b in range(0, n, 24):
        clips = [world.render(s, 9, tok.cfg.height) for s in scenes[b : b + 24]]
        rec = round_trip(torch.stack([from_uint8(c) for c in clips])).clamp(-1, 1)
        for s, c, r in zip(scenes[b : b + 24], clips, rec):
            if read_clip(c).shape == s.shape:
                rows.append((s.shape, s.size, read_clip(to_uint8(r)).shape == s.shape))
    print("1. round trip: shape read right (sources read right only)")
    for shape in world.SHAPES:
        cells = []
        for lo, hi in SIZE_BINS:
            hits = [ok for sh, size, ok in rows if sh == shape and lo <= size < hi]
            cells.append(f"size {lo:.2f}-{hi:.2f}: {100 * np.mean(hits):5.1f}% (n {len(hits):2d})")
        print(f"   {shape:9s} " + "   ".join(cells))
    print(f"   all {100 * np.mean([ok for _, _, ok in rows]):.1f}% of {len(rows)}")


def first_window(vp: VideoPoet, n_clips: int = 20, n_seeds: int = 16) -> None:
    cfg = vp.preset.tokenizer
    ctx_frames = context_frames(cfg)
    options = vp.sampling_options(None)
    rng = np.random.default_rng(WINDOW_SEED)
    seeds = [1000 + s for s in range(n_seeds)]
    kept = []
    print(f"2. one continuation window from a clean context, {n_seeds} seeds per clip (o kept, x lost)")
    for i in range(n_clips):
        scene = world.sample_scene(rng, cfg.frames, motion=world.MOTIONS[i % 4], allow_held_out=True)
        clip = world.render(scene, cfg.frames, cfg.height)
        ctx = vp._encode(from_uint8(clip[-ctx_frames:])[None]).expand(n_seeds, -1)
        prompt = canonical_caption(scene.color, scene.shape, scene.motion)
        new = vp._run("continue", prompt, tokens_per_window(cfg), visual_in=ctx, seed=seeds, progress=None, options=options)
        ok, misread = [], []
        for video in vp._decode(torch.cat([ctx, new], 1)):
            r = read_clip(to_uint8(video)[ctx_frames - cfg.time_stride :])
            ok.append(r.color == scene.color and r.shape == scene.shape)
            misread += [] if ok[-1] else [f"{r.color} {r.shape}"]
        kept += ok
        marks = "".join("o" if x else "x" for x in ok)
        worst = f"  (read as {max(set(misread), key=misread.count)})" if misread else ""
        print(f"   {scene.color:6s} {scene.shape:8s} {scene.motion:5s} on {scene.background:10s} size {scene.size:.3f}  {marks}{worst}")
    q = float(np.mean(kept))
    print(f"   kept {100 * q:.1f}% of {len(kept)} windows; q^8 = {100 * q**8:.1f}% (a 10 s extension passes 8 windows)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="weights to study (default: the shipped ones)")
    ap.add_argument("--decoder", default=None, help="swap in this tokenizer.safetensors' decoder (a --decoder-only fine-tune)")
    ap.add_argument("--tokenizer", default=None, help="part 1 only, on this tokenizer.safetensors (with --preset)")
    ap.add_argument("--preset", default="tiny", help="the tokenizer's preset (name or YAML path)")
    args = ap.parse_args()
    torch.set_num_threads(int(__import__("os").environ.get("THREADS", 2)))
    t0 = time.time()
    with torch.no_grad():
        if args.tokenizer:
            tok = VideoTokenizer(load_preset(args.preset).tokenizer).eval()
            load_into(tok, read_checkpoint(Path(args.tokenizer))[0], "tokenizer", Path(args.tokenizer))
            round_trip_by_size(tok)
        else:
            vp = VideoPoet.from_pretrained("tiny", checkpoint=args.checkpoint)
            if args.decoder:
                vp.replace_decoder(Path(args.decoder))
            round_trip_by_size(vp.tokenizer)
            first_window(vp)
    print(f"({time.time() - t0:.0f} s)")
