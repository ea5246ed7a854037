"""Does `extend` keep small outlines if each window is the best of N draws, scored by how much the prompt
explains it? The eval's extend measure (as extend_sweep.py: clips the eval does not use, two seed sets)
with every continuation window drawn N times (seeds s, s+1, ...: the first draw is the one `extend`
makes) and the draw kept that maximises
  log p(window | ctx) + g * [log p(window | text, ctx) - log p(window | ctx)]
under the LM at temperature 1 (teacher-forced, one pass per branch). g = 1 is the conditional likelihood,
large g ranks by the pointwise mutual information of window and prompt: how much the text, rather than
the context, explains the draw (a square drawn for "a circle" explains the text less than a circle).
No analyser is involved in the choice. Study code: it replaces VideoPoet._next_window.
Usage: python eval/study/extend_rerank.py "N:g;N:g;..." [N_CLIPS]   (1:1 = what `extend` does)"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import measure  # noqa: E402  (this folder: the clips and seeds of that study)
from model import tasks  # noqa: E402
from model.pipeline import VideoPoet, tokens_per_window  # noqa: E402

DRAWS, WEIGHT = 1, 1.0


def window_scores(vp: VideoPoet, prompt: str, ctx: torch.Tensor, cands: torch.Tensor, options) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(cand | text, ctx), log p(cand | ctx)) summed over each candidate's ids, shape (N,) each."""
    n = cands.shape[0]
    states, valid, pooled = vp.encode_text([vp.prompt_for_lm(prompt, options)] * n)
    seq = tasks.build("continue", states, valid, pooled, cands.shape[1], visual_in=ctx.expand(n, -1), visual_out=cands)
    out = []
    for s in (seq, seq.without_text()):
        with vp._autocast():
            logits = vp.lm(s).float()
        out.append(-F.cross_entropy(logits.flatten(0, 1), cands.flatten(), reduction="none").view(n, -1).sum(1))
    return out[0], out[1]


def next_window(self, ctx, prompt, seed, progress, options):
    """VideoPoet._next_window, the best of DRAWS draws (seeds seed, seed+1, ...) by the score above."""
    if DRAWS == 1:
        return draw_one(self, ctx, prompt, seed, progress, options)
    n = tokens_per_window(self.preset.tokenizer)
    cands = self._run("continue", prompt, n, visual_in=ctx.expand(DRAWS, -1), seed=[seed + d for d in range(DRAWS)], progress=None, options=options)
    cond, uncond = window_scores(self, prompt, ctx, cands, options)
    return cands[int(torch.argmax(uncond + WEIGHT * (cond - uncond)))][None]


if __name__ == "__main__":
    torch.set_num_threads(2)
    draw_one, VideoPoet._next_window = VideoPoet._next_window, next_window
    vp = VideoPoet.from_pretrained("tiny")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    for spec in sys.argv[1].split(";"):
        d, g = spec.split(":")
        DRAWS, WEIGHT = int(d), float(g)
        measure(vp, f"best of {DRAWS}, g {WEIGHT:g}", n)
