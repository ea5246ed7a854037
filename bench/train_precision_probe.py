"""Is bf16 autocast worth it for training on this CPU? One training step of each model, float32 vs bf16.

    python bench/train_precision_probe.py       # idle machine; about 11 min on a CPU without fast bf16

Times a full step (forward, backward, AdamW) of the tiny preset's LM (batch 24, text-to-video and
stylization layouts: 320 and 640 visual tokens) and of its tokenizer (batch 8 of 17x64x64 clips) at random
weights on random inputs, each in float32 and under bf16 autocast (the fastest of two steps after one
warm-up), and how many of the shipped tokenizer's ids are the same when 32 world clips are encoded in
either precision. Prints one JSON object, with what `model.train.common.fast_bf16` says of this CPU (the
trainers autocast only where it is true). This is the measurement behind that choice (README, Training your
own).
"""

from __future__ import annotations

import json
import time

import torch

from model import tasks
from model.config import load_preset
from model.data.sources import world_clips
from model.pipeline import VideoPoet
from model.tokenizer import VideoTokenizer
from model.train.common import fast_bf16
from model.train.lm import lm_loss
from model.train.tokenizer import to_batch
from model.transformer import PrefixLM


def step_seconds(model: torch.nn.Module, loss_fn, bf16: bool) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return min(times[1:])


def main() -> None:
    torch.manual_seed(0)
    preset = load_preset("tiny")
    t = preset.tokenizer
    B, n = 24, t.tokens_per_latent_frame() * t.latent_shape()[0]
    states, valid, pooled = torch.randn(B, 16, 384), torch.ones(B, 16, dtype=torch.bool), torch.randn(B, 384)
    out = torch.randint(t.vocab_size, (B, n))
    layouts = {
        "t2v": tasks.build("t2v", states, valid, pooled, n, visual_out=out, has_text=torch.ones(B, dtype=torch.bool)),
        "stylize": tasks.build("stylize", states, valid, pooled, n, visual_in=torch.randint(t.vocab_size, (B, n)),
                               visual_out=out, has_text=torch.ones(B, dtype=torch.bool)),  # fmt: skip
    }
    clips = torch.rand(8, t.frames, 3, t.height, t.width) * 2 - 1
    result: dict = {"fast_bf16": fast_bf16(torch.device("cpu")), "threads": torch.get_num_threads(), "seconds_per_step": {}}
    for bf16 in (False, True):
        name = "bf16" if bf16 else "float32"
        lm = PrefixLM.for_tokenizer(preset.lm, t)
        for task, seq in layouts.items():
            result["seconds_per_step"][f"lm_{task}_{name}"] = step_seconds(lm, lambda: lm_loss(lm, seq, out), bf16)
        tok = VideoTokenizer(t)

        def tok_loss():
            rec, _, aux, _ = tok(clips, 1.0)
            return 5.0 * ((rec.float() - clips) ** 2).mean() + aux

        result["seconds_per_step"][f"tokenizer_{name}"] = step_seconds(tok, tok_loss, bf16)
    s = result["seconds_per_step"]
    result["bf16_over_float32"] = {k: s[f"{k}_bf16"] / s[f"{k}_float32"] for k in ("lm_t2v", "lm_stylize", "tokenizer")}
    vp = VideoPoet.from_pretrained("tiny")
    x = to_batch(world_clips(32, seed=99, frames=t.frames, size=t.height).clips, torch.device("cpu"))
    with torch.no_grad():
        a = vp.tokenizer.encode(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b = vp.tokenizer.encode(x)
    result["shipped_ids_equal_bf16_vs_float32"] = float((a == b).float().mean())
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
