"""Choose `extend` settings on clips the eval does not use: the eval's own extend measure (model.evaluate.
eval_extend) on source clips drawn from other seeds, two sampling-seed sets each. Usage:
  python eval/study/extend_sweep.py "temperature=0.6;guidance=1.5;context=2" [N_CLIPS]
("" in the list = the preset's defaults; context=N: N latent frames of context per window instead of
model.pipeline.CONTEXT_LATENTS). The other extend studies import CLIP_SEEDS, SEED_SETS and `measure`."""

import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from model import pipeline  # noqa: E402
from model.evaluate import eval_extend  # noqa: E402
from model.pipeline import VideoPoet  # noqa: E402

CLIP_SEEDS = (5151, 6262)  # source clips; the eval's come from EVAL_SEED 4242, training from 1 and 2
SEED_SETS = (5000, 7000)  # clip i extends with seed S + i


def measure(vp: VideoPoet, label: str, n: int, options=None) -> None:
    """Print one line: the share of extensions that keep colour and shape, per clip set and mean."""
    t0, keep, seams = time.time(), [], []
    for clip_seed, base in zip(CLIP_SEEDS, SEED_SETS):
        r = eval_extend(vp, n=n, options=options, seed=base, clip_seed=clip_seed)
        keep.append(r["keeps_color_shape"])
        seams.append(r["seams_kept"])
    print(f"{label:28s} keeps colour+shape: " + " / ".join(f"{100 * k:.0f}%" for k in keep)
          + f" (mean {100 * sum(keep) / len(keep):.1f}%); seams kept {100 * sum(seams) / len(seams):.1f}%  ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    torch.set_num_threads(2)
    vp = VideoPoet.from_pretrained("tiny")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    default_context = pipeline.CONTEXT_LATENTS
    for spec in sys.argv[1].split(";"):
        kw = {k: float(v) for k, v in (p.split("=") for p in spec.split(",") if p)}
        pipeline.CONTEXT_LATENTS = int(kw.pop("context", default_context))
        measure(vp, spec or "defaults", n, vp.sampling_options(None, **kw))
