"""Choose `extend` settings on clips the eval does not use: the eval's own extend measure (model.evaluate.
eval_extend) on source clips drawn from other seeds, two sampling-seed sets each. Usage:
  python eval/study/extend_sweep.py "temperature=0.6;guidance=1.5;context=2" [N_CLIPS] [SEED_SET,SEED_SET] [CHECKPOINT]
("" in the list = the preset's defaults; context=N: N latent frames of context per window instead of
model.pipeline.CONTEXT_LATENTS; carry=1: each window's context keeps the ids the LM drew for the previous
window's latent frames instead of encoding them again from the decoded frames (only the context's first,
one-frame latent frame is encoded); negative=shape: guidance steers away from the prompt with its shape
word swapped, a circle or triangle to "square", a square to "circle"). The other extend studies import
CLIP_SEEDS, SEED_SETS and `measure`."""

import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from model import pipeline  # noqa: E402
from model.evaluate import eval_extend  # noqa: E402
from model.pipeline import VideoPoet  # noqa: E402
from model.config import SamplingOptions  # noqa: E402

CLIP_SEEDS = (5151, 6262)  # source clips; the eval's come from EVAL_SEED 4242, training from 1 and 2
SEED_SETS = (5000, 7000)  # clip i extends with seed S + i


def measure(vp: VideoPoet, label: str, n: int, options=None, seed_sets=SEED_SETS) -> None:
    """Print one line: the share of extensions that keep colour and shape, per clip set and mean."""
    t0, keep, seams = time.time(), [], []
    for clip_seed, base in zip(CLIP_SEEDS, seed_sets):
        r = eval_extend(vp, n=n, options=options, seed=base, clip_seed=clip_seed)
        keep.append(r["keeps_color_shape"])
        seams.append(r["seams_kept"])
    print(f"{label:28s} keeps colour+shape: " + " / ".join(f"{100 * k:.0f}%" for k in keep)
          + f" (mean {100 * sum(keep) / len(keep):.1f}%); seams kept {100 * sum(seams) / len(seams):.1f}%  ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip


OTHER_SHAPE = {"circle": "square", "triangle": "square", "square": "circle"}


class Variant(VideoPoet):
    """`extend` with the study's switches; off, it is VideoPoet's own."""

    carry = False
    negative_shape = False
    _drawn = None  # the previous window's new ids (carry)

    def extend(self, video, prompt, seconds, *, options: SamplingOptions = None, **kw):
        if self.negative_shape:  # the eval's canonical prompt: "a {colour} {shape} ..."
            words = prompt.split()
            options = dataclasses.replace(options, negative=" ".join([*words[:2], OTHER_SHAPE[words[2]], *words[3:]]))
        self._drawn = None
        return super().extend(video, prompt, seconds, options=options, **kw)

    def _next_window(self, ctx, prompt, seed, progress, options):
        if self.carry and self._drawn is not None:
            m = min(self._drawn.shape[1], ctx.shape[1] - self.preset.tokenizer.tokens_per_latent_frame())
            ctx = torch.cat([ctx[:, :-m], self._drawn[:, -m:]], 1)  # the one-frame latent frame stays encoded
        self._drawn = super()._next_window(ctx, prompt, seed, progress, options)
        return self._drawn


if __name__ == "__main__":
    torch.set_num_threads(2)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    seed_sets = tuple(int(s) for s in sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[3] else SEED_SETS
    vp = Variant.from_pretrained("tiny", sys.argv[4] if len(sys.argv) > 4 else None)
    default_context = pipeline.CONTEXT_LATENTS
    for spec in sys.argv[1].split(";"):
        kw = dict(p.split("=") for p in spec.split(",") if p)
        pipeline.CONTEXT_LATENTS = int(kw.pop("context", default_context))
        vp.carry = kw.pop("carry", "0") == "1"
        vp.negative_shape = kw.pop("negative", "") == "shape"
        options = vp.sampling_options(None, **{k: float(v) for k, v in kw.items()})
        measure(vp, spec or "defaults", n, options, seed_sets)
