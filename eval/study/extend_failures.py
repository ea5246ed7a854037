"""Where `extend` loses the object: the eval's extend measure (model.evaluate.eval_extend) on source clips
the eval does not use, its misses counted by the source's motion, background, shape and object size,
and its seams by whether the object touches the frame's edge there (model.evaluate.edge_gap).
Then, for comparison, the LM teacher-forced on the continuation layout (no sampling): cross-entropy and
top-1 of the two new latent frames' ids per motion, on all cells and on the object's cells (those whose id
is not the clip's most common one, the background's).
Usage: python eval/study/extend_failures.py [N_CLIPS] [SEED_SET ...]   (defaults: 20 clips, 5000 7000)
       python eval/study/extend_failures.py walls   (only the tokenizer's round trip at walls vs clear of them)"""

import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import CLIP_SEEDS  # noqa: E402  (this folder: the clips that study chooses settings on)
from model import tasks  # noqa: E402
from model.data import world  # noqa: E402
from model.data.captions import canonical_caption  # noqa: E402
from model.evaluate import _source_clips, eval_extend  # noqa: E402
from model.pipeline import CONTEXT_LATENTS, VideoPoet  # noqa: E402
from model.video_io import from_uint8  # noqa: E402

SIZE_THIRDS = ((0.10, 0.13), (0.13, 0.16), (0.16, 0.19))
TF_SEED = 77  # fresh clips for the teacher-forced part
RT_SEED = 777  # and for the round trip at walls


@torch.no_grad()
def teacher_forced_by_motion(vp: VideoPoet, n: int = 32) -> None:
    t = vp.preset.tokenizer
    tpf, ctx = t.tokens_per_latent_frame(), CONTEXT_LATENTS * t.tokens_per_latent_frame()
    rng = np.random.default_rng(TF_SEED)
    vp.lm.eval()
    print(f"teacher-forced continuation ({n} fresh clips per motion; the {t.latent_shape()[0] - CONTEXT_LATENTS} new latent frames)")
    for motion in world.MOTIONS[:-1]:
        scenes = [world.sample_scene(rng, t.frames, motion=motion, allow_held_out=True) for _ in range(n)]
        ids = vp._encode(torch.stack([from_uint8(world.render(s, t.frames, t.height)) for s in scenes]))
        out = ids[:, ctx:]
        seq = tasks.build("continue", *vp.encode_text([canonical_caption(s.color, s.shape, s.motion) for s in scenes]),
                          out.shape[1], visual_in=ids[:, :ctx], visual_out=out)  # fmt: skip
        logits = vp.lm(seq).float()
        ce = F.cross_entropy(logits.flatten(0, 1), out.flatten(), reduction="none").view(n, -1)
        top1 = (logits.argmax(-1) == out).float()
        obj = out != torch.mode(out, 1).values[:, None]
        print(f"  {motion:6s} all cells: CE {ce.mean():.3f}, top-1 {100 * top1.mean():.1f}%   object cells: CE {ce[obj].mean():.3f}, "
              f"top-1 {100 * top1[obj].mean():.1f}%  ({int(obj.sum()) / n / (out.shape[1] / tpf):.1f} per latent frame)")


@torch.no_grad()
def round_trip_by_wall(vp: VideoPoet, n: int = 60) -> None:
    """Is the tokenizer worse at walls? Shapes read after one encode-decode of clips whose object bounces
    off a wall against clips clear of the walls (fresh clips)."""
    from model.analysis import read_clip
    from model.video_io import to_uint8

    t = vp.preset.tokenizer
    for at_wall in (True, False):
        scenes, clips = world.render_clips(n, RT_SEED, t.frames, t.height, allow_held_out=True, at_wall=at_wall)
        rec = [to_uint8(vp._decode(vp._encode(from_uint8(c)[None]))[0]) for c in clips]
        right = sum(read_clip(r).shape == s.shape for s, r in zip(scenes, rec))
        print(f"round trip, {'object meets a wall' if at_wall else 'clear of the walls'}: shape read right in {right}/{n}")


torch.set_num_threads(2)
vp = VideoPoet.from_pretrained("tiny")
if sys.argv[1:] == ["walls"]:
    round_trip_by_wall(vp)
    sys.exit()
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
seed_sets = [int(s) for s in sys.argv[2:]] or [5000, 7000]
t0, rows, walls = time.time(), [], defaultdict(float)
for base in seed_sets:
    for clip_seed in CLIP_SEEDS:
        scenes = [s for s, _ in _source_clips(vp, n, clip_seed)]
        r = eval_extend(vp, n=n, seed=base, clip_seed=clip_seed)
        rows += [(s, c) for s, c in zip(scenes, r["clips"])]
        for part, count in (("at_wall", r["seams_at_wall"]), ("clear", r["seams"] - r["seams_at_wall"])):
            walls[part] += count
            if count:  # (the rate of no seams is nan)
                walls[f"{part} kept"] += r[f"seams_kept_{part}"] * count
lost = [c for _, c in rows if not c["kept"]]
print(f"{len(rows)} extensions to 10 s, {len(lost)} lose colour or shape at a seam ({time.time() - t0:.0f} s)")
print("  seams where the object touches the frame's edge: " + "   ".join(
    f"{part}: {walls[part] - walls[part + ' kept']:.0f}/{walls[part]:.0f} lost" for part in ("at_wall", "clear")))
first = [c["lost"][0]["at_wall"] for c in lost]  # a lost outline is not drawn back: where did it go first?
print(f"  a clip's first lost seam is at a wall in {sum(first)}/{len(first)} (of all seams {walls['at_wall']:.0f}/{walls['at_wall'] + walls['clear']:.0f})")
groups = {
    "motion": lambda s: s.motion,
    "axis": lambda s: "horizontal" if s.motion in ("left", "right") else "vertical",
    "background": lambda s: s.background,
    "shape": lambda s: s.shape,
    "size": lambda s: next((f"{lo:.2f}-{hi:.2f}" for lo, hi in SIZE_THIRDS if s.size < hi), "0.16-0.19"),
}
for name, key in groups.items():
    count, miss = defaultdict(int), defaultdict(int)
    for s, c in rows:
        count[key(s)] += 1
        miss[key(s)] += not c["kept"]
    print(f"  by {name:10s} " + "   ".join(f"{k}: {miss[k]}/{count[k]} lost" for k in sorted(count)))
reads = defaultdict(int)
for s, c in rows:
    for x in c["lost"]:
        reads[f"{s.shape} read as {x['read'][1]}" if x["read"][1] != s.shape else f"{s.color} read as {x['read'][0]}"] += 1
print("  lost seams read as: " + ", ".join(f"{k} {v}" for k, v in sorted(reads.items(), key=lambda kv: -kv[1])))
teacher_forced_by_motion(vp)
