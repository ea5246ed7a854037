"""What can `extend` reach with this tokenizer if the LM were perfect? The eval's extend measure, run by
`extend`'s own loop (decode, encode the last nine frames again as the next context, decode each window
with its context), where each window's new ids are not sampled but are the tokenizer's encoding of the
world's true next window (the same scene rendered on for ten seconds, bouncing off the walls): an LM
that always draws exactly what the tokenizer makes of the truth. What this misses is lost by the
tokenizer and the analyser alone, so no sampler or LM can do better with these ids.
The same measure on the world's true frames (no tokenizer) says what the analyser itself misreads.
A tokenizer on its own (no LM needed: the oracle never samples) can be measured the same way, so a new
tokenizer's ceiling is known before an LM is trained on it.
Usage: python eval/study/extend_ceiling.py [--tokenizer TOKENIZER.safetensors --preset PRESET.yaml] [--clips N]
(the eval's N clips, default 10, the 2 x 20 extend_sweep clips, then --more clips of seed 8383; default: the shipped weights)"""

import argparse
from collections import Counter
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import CLIP_SEEDS  # noqa: E402
from model.data import world  # noqa: E402
from model.evaluate import EVAL_SEED, _source_clips, eval_extend  # noqa: E402
from model.pipeline import VideoPoet, context_frames, frames_per_window  # noqa: E402
from model.checkpoint import load_into, read_checkpoint  # noqa: E402
from model.config import load_preset  # noqa: E402
from model.video_io import from_uint8, to_uint8  # noqa: E402


class Oracle(VideoPoet):
    scenes: dict  # the source clips' uint8 bytes -> their world.Scene (set before extending)
    pixels = False  # True: the world's true frames themselves, no tokenizer (what the analyser reads of the truth)

    def extend(self, video, prompt, seconds, **kw):
        key = to_uint8(video).tobytes()
        scene = self.scenes[key]
        cfgt = self.preset.tokenizer
        frames = video.shape[0] + round(seconds * self.preset.video.fps) + cfgt.frames
        self._truth = from_uint8(world.render(scene, frames, cfgt.height))
        self._start = video.shape[0] - context_frames(cfgt)
        if self.pixels:
            return self._truth[: frames - cfgt.frames]
        return super().extend(video, prompt, seconds, **kw)

    def _next_window(self, ctx, prompt, seed, progress, options):
        cfgt = self.preset.tokenizer
        s = self._start
        self._start += frames_per_window(cfgt)
        ids = self._encode(self._truth[None, s : s + cfgt.frames])
        return ids[:, ctx.shape[1] :]


def report(label: str, r: dict, scenes: list) -> None:
    """One line per set, the lost clips, and the losses by motion and by (size third, shape)."""
    print(f"{label}: keeps colour+shape {100 * r['keeps_color_shape']:.1f}% of {r['n']}; seams kept {100 * r['seams_kept']:.1f}%", flush=True)
    lost_by, all_by = Counter(), Counter()
    for scene, c in zip(scenes, r["clips"]):
        third = "small" if scene.size < 0.13 else "mid" if scene.size < 0.16 else "large"  # sizes are uniform on [0.10, 0.19)
        for key in (scene.motion, f"{third} {scene.shape}"):
            all_by[key] += 1
            lost_by[key] += not c["kept"]
        if not c["kept"]:
            print(f"   lost: {c['prompt']} ({c['background']}, size {c['size']}): seams {[x['seam'] for x in c['lost']]}")
    if sum(lost_by.values()):
        print("   lost by motion / size and shape: " + ", ".join(f"{k} {lost_by[k]}/{all_by[k]}" for k in sorted(all_by)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default=None, help="this tokenizer.safetensors instead of the shipped one (with --preset)")
    ap.add_argument("--preset", default="tiny", help="the tokenizer's preset (name or YAML path)")
    ap.add_argument("--clips", type=int, default=10, help="the eval's clips (the eval uses 10)")
    ap.add_argument("--more", type=int, default=80, help="then this many clips of another seed (8383)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    if args.tokenizer:
        vp = Oracle.random(load_preset(args.preset))  # the LM is never used
        load_into(vp.tokenizer, read_checkpoint(Path(args.tokenizer))[0], "tokenizer", Path(args.tokenizer))
    else:
        vp = Oracle.from_pretrained("tiny")
    vp.scenes = {}
    n = args.clips
    sets = [("eval clips", EVAL_SEED, n), *[(f"dev clips {s}", s, 20) for s in CLIP_SEEDS], ("more clips 8383", 8383, args.more)]
    for label, clip_seed, count in sets:
        scenes = []
        for scene, clip in _source_clips(vp, count, clip_seed):
            vp.scenes[np.ascontiguousarray(clip).tobytes()] = scene
            scenes.append(scene)
        for vp.pixels in (True, False):
            report(f"{label} ({'the true frames' if vp.pixels else 'oracle LM'})", eval_extend(vp, n=count, clip_seed=clip_seed), scenes)
