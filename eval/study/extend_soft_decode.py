"""Does `extend` keep small outlines if each window is decoded from what the LM believes rather than from
the ids it drew? The eval's extend measure (as extend_sweep.py: 20 clips the eval does not use, two seed
sets) with each window's new latent frames decoded from
  hard: the drawn ids' bits (what `extend` does; the control),
  soft: each bit's expected value under the sampling distribution (guided, filtered), in [-1, 1],
  sign: each bit's more probable value.
The draws, and so the LM's own inputs, are the same in all three; only the frames decoded (and re-encoded
as the next window's context) differ. Study code: it replaces VideoPoet._continue_to and wraps the
sampler's pick to record the distributions. Usage: python eval/study/extend_soft_decode.py hard|soft|sign"""

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import measure  # noqa: E402  (this folder: the clips and seeds of that study)
from model import sampling  # noqa: E402
from model.lfq import ids_to_bits  # noqa: E402
from model.pipeline import VideoPoet, context_frames, tokens_per_window  # noqa: E402

MODE = sys.argv[1] if len(sys.argv) > 1 else "soft"
if MODE not in ("hard", "soft", "sign"):
    sys.exit(f"mode must be hard, soft or sign, got {MODE!r}")

torch.set_num_threads(2)
vp = VideoPoet.from_pretrained("tiny")
cfg = vp.preset.tokenizer
table = ids_to_bits(torch.arange(2**cfg.bits), cfg.bits)  # (vocabulary, bits)
probs: dict[int, torch.Tensor] = {}  # position -> the distribution its id was drawn from (the last pick wins)
pick = sampling._pick


def recording_pick(logits, seq, i, o, generator, noise=None):
    guided = sampling.guided(logits, seq.batch, o.guidance) if o.guidance != 1.0 else logits
    probs[i] = sampling.filter_logits(guided, o.temperature, o.top_k, o.top_p).softmax(-1)
    return pick(logits, seq, i, o, generator, noise)


def continue_to(self, video_ids, native_frames, prompts, seed, progress, options):
    ctx_frames, (_, h, w) = context_frames(cfg), cfg.latent_shape()
    video, window = self._decode(video_ids)[0], 0
    while video.shape[0] < native_frames:
        ctx = self._encode(video[None, -ctx_frames:])
        probs.clear()
        new = self._run("continue", prompts[min(window, len(prompts) - 1)], tokens_per_window(cfg), visual_in=ctx,
                        seed=seed + 1000 * (window + 1), progress=progress, options=options)  # fmt: skip
        bits = ids_to_bits(torch.cat([ctx, new], 1), cfg.bits)
        if MODE != "hard":
            expected = torch.stack([probs[i][0] for i in range(new.shape[1])]) @ table
            bits[0, ctx.shape[1] :] = expected if MODE == "soft" else torch.where(expected >= 0, 1.0, -1.0)
        with self._autocast():
            z = bits.view(1, -1, h, w, cfg.bits).movedim(-1, 1)
            full = self.tokenizer._from_groups(self.tokenizer.decoder(z)).clamp(-1, 1).float()[0]
        video, window = torch.cat([video, full[ctx_frames:]]), window + 1
    return video[:native_frames]


sampling._pick = recording_pick
VideoPoet._continue_to = continue_to
measure(vp, MODE, n=20)
