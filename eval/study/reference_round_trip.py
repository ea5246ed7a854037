"""The tokenizer round trip with and without a reference frame (model.tokenizer.ReferenceBlend), by shape
and object size: extend_diagnosis.py part 1's 240 scenes, each decoded 40 frames after its reference (the
scene's frame 0), so the object has moved (or bounced) in between, as in `extend`'s later windows. Also
what the analyser reads of the shifted reference alone (VideoTokenizer.align, no blend: an upper bound on what
motion compensation gives), and the PSNR of each.

Usage: python eval/study/reference_round_trip.py [--checkpoint WEIGHTS.safetensors] [--gap 40]
  (default: the shipped weights; any checkpoint whose tokenizer has a blend: a full one or `train tokenizer --reference`'s)
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from extend_diagnosis import ROUND_TRIP_SEED, SIZE_BINS  # noqa: E402
from model.analysis import read_clip  # noqa: E402
from model.checkpoint import checkpoint_config, load_into, read_checkpoint  # noqa: E402
from model.config import TokenizerConfig  # noqa: E402
from model.data import world  # noqa: E402
from model.tokenizer import VideoTokenizer  # noqa: E402
from model.video_io import from_uint8, to_uint8  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> VideoTokenizer:
    tensors, meta = read_checkpoint(path)
    tok = VideoTokenizer(TokenizerConfig(**checkpoint_config(meta)["tokenizer"])).eval()
    load_into(tok, tensors, "tokenizer", path)
    if tok.reference_blend is None:
        raise SystemExit(f"{path}: this tokenizer has no reference blend (train one with `videopoet train tokenizer --reference`)")
    return tok


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "presets" / "tiny.safetensors")
    ap.add_argument("--gap", type=int, default=40, help="frames between the reference and the clip decoded")
    ap.add_argument("--n", type=int, default=240)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    t0 = time.time()
    tok = load(args.checkpoint)
    ways = ("ids alone", "with the reference", "shifted reference alone")
    rng = np.random.default_rng(ROUND_TRIP_SEED)
    rows, psnr = [], {w: [] for w in ways}
    for j in range(args.n):
        scene = world.sample_scene(rng, 9, motion=world.MOTIONS[j % len(world.MOTIONS)], allow_held_out=True)
        x = world.render_times(scene, [0, *range(args.gap, args.gap + 9)], tok.cfg.height)
        ref, clip = from_uint8(x[:1]), from_uint8(x[1:])[None]
        ids = tok.encode(clip)
        plain = tok.decode(ids)
        outs = {ways[0]: plain, ways[1]: tok.decode(ids, ref), ways[2]: tok.align(ref, plain)}
        for w, v in outs.items():
            psnr[w].append(10 * np.log10(4 / max(float(((v - clip) ** 2).mean()), 1e-10)))
        if read_clip(x[1:]).shape == scene.shape:  # sources the analyser reads right only
            rows.append((scene.shape, scene.size, {w: read_clip(to_uint8(v[0])).shape == scene.shape for w, v in outs.items()}))
    for w in ways:
        print(f"{w}: PSNR {np.mean(psnr[w]):.2f} dB (median {np.median(psnr[w]):.2f}); shape read right:")
        for shape in world.SHAPES:
            cells = []
            for lo, hi in SIZE_BINS:
                hits = [g[w] for sh, size, g in rows if sh == shape and lo <= size < hi]
                cells.append(f"size {lo:.2f}-{hi:.2f}: {100 * np.mean(hits):5.1f}% (n {len(hits):2d})")
            print(f"   {shape:9s} " + "   ".join(cells))
        print(f"   all {100 * np.mean([g[w] for *_, g in rows]):.1f}% of {len(rows)}", flush=True)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
