"""Which weight layout makes the decode step fastest on this CPU?

    HF_HUB_OFFLINE=1 python bench/layout_probe.py          # idle machine; ~30 s

A decode step is a row of matrix-vector products (batch 1 or 2 rows against every projection). The sampler
runs them as `x @ w` on copies of the weights transposed to (in, out) and made contiguous, which
`PrefixLM.new_cache` puts in the cache (`PrefixLM.step_weights`). This probe times one step of the shipped
LM three ways, interleaved in one run, at batch 1 and 2:

- `out_in_fp32`: the parameters' own (out, in) layout, as F.linear reads them (the cache holds `.t()` views);
- `in_out_fp32`: the contiguous (in, out) copies (what the sampler uses);
- `in_out_bf16`: the same copies in bfloat16 under bf16 autocast (half the bytes; fp32 accumulation in
  oneDNN's bf16 kernels; on CPUs with avx512_bf16).

and checks each against the default's logits. Prints one JSON object.
"""

from __future__ import annotations

import json

import torch

from common import t2v_sequence  # noqa: E402  (bench/ is on sys.path when run as a script)
from compile_static_probe import interleaved_ms
from model.pipeline import VideoPoet
from model.sampling import _begin


@torch.no_grad()
def measure(vp: VideoPoet, rounds: int = 15) -> dict:
    lm = vp.lm.eval()
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": rounds, "batches": {}}
    for batch in (1, 2):
        seq = t2v_sequence(vp.preset, 320)
        run = seq.doubled() if batch == 2 else seq
        _, cache, _, _ = _begin(lm, run, False, torch.float32)
        tok = torch.zeros(batch, dtype=torch.long)
        p = seq.prefix_len + 100
        params = [(b.attn.qkv.weight, b.attn.out.weight, b.mlp.w13.weight, b.mlp.w2.weight) for b in lm.blocks]
        layouts = {
            "out_in_fp32": ([tuple(w.t() for w in ws) for ws in params], lm.head.weight.t()),  # views: F.linear's reads
            "in_out_fp32": (cache.weights, cache.head),
            "in_out_bf16": ([tuple(w.bfloat16() for w in ws) for ws in cache.weights], cache.head.bfloat16()),
        }

        def step(name: str):
            cache.weights, cache.head = layouts[name]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name.endswith("bf16")):
                return lm.decode_step(tok, p, cache).float()

        ref = step("in_out_fp32")
        diffs = {k: float((step(k) - ref).abs().max()) for k in layouts}
        ms = interleaved_ms({k: (lambda k=k: step(k)) for k in layouts}, rounds)
        report["batches"][batch] = {"ms_per_step": ms, "max_abs_logit_diff_vs_in_out_fp32": diffs,
                                    "in_out_fp32_speedup_vs_out_in": ms["out_in_fp32"] / ms["in_out_fp32"],
                                    "in_out_bf16_speedup_vs_out_in": ms["out_in_fp32"] / ms["in_out_bf16"]}  # fmt: skip
    return report


def main() -> None:
    print(json.dumps(measure(VideoPoet.from_pretrained("tiny")), indent=1))


if __name__ == "__main__":
    main()
