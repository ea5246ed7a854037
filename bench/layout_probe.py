"""Which matrix-product kernel makes the sampler's model calls fastest on this CPU?

    HF_HUB_OFFLINE=1 python bench/layout_probe.py          # idle machine; ~1 min

A decode step is a row of small matrix products (1 or 2 rows against every projection; a Jacobi chunk 8
or 16). The cached passes take each projection as a (w, w_t) pair made by `PrefixLM.new_cache` (w the
(out, in) weight, w_t its (in, out) contiguous copy) and `model.transformer.project` picks a kernel by the
number of rows. This probe times the shipped LM's model calls with four policies, interleaved in turns in
one run:

- `f_linear`: F.linear on the (out, in) weights, whatever the rows (what `nn.Linear` does);
- `x_wt`: x @ w_t whatever the rows;
- `by_rows` (the sampler's): w @ x^T for 2..SMALL_ROWS rows, x @ w_t otherwise;
- `x_wt_bf16`: x @ w_t with bfloat16 copies under bf16 autocast (half the bytes; oneDNN's bf16 kernels
  accumulate in fp32; CPUs with avx512_bf16).

for a decode step at batch 1 and 2 and a Jacobi chunk of 8 tokens at batch 1 and 2, and checks each
policy's logits against `by_rows`. Prints one JSON object.
"""

from __future__ import annotations

import json

import torch

import model.transformer as T
from common import t2v_sequence  # noqa: E402  (bench/ is on sys.path when run as a script)
from compile_static_probe import interleaved_ms
from model.pipeline import VideoPoet
from model.sampling import _begin

POLICIES = ("f_linear", "x_wt", "by_rows", "x_wt_bf16")


@torch.no_grad()
def measure(vp: VideoPoet, rounds: int = 15) -> dict:
    lm = vp.lm.eval()
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": rounds,
                    "small_rows": T.SMALL_ROWS, "calls": {}}  # fmt: skip
    small = T.SMALL_ROWS
    try:
        for batch in (1, 2):
            seq = t2v_sequence(vp.preset, 320)
            run = seq.doubled() if batch == 2 else seq
            _, cache, _, _ = _begin(lm, run, False, torch.float32)
            pairs = (cache.weights, cache.head)
            bf16 = ([tuple((w.bfloat16(), wt.bfloat16()) for w, wt in layer) for layer in pairs[0]], tuple(w.bfloat16() for w in pairs[1]))
            weights = {"f_linear": ([tuple((w, None) for w, _ in layer) for layer in pairs[0]], (pairs[1][0], None)),
                       "x_wt": pairs, "by_rows": pairs, "x_wt_bf16": bf16}  # fmt: skip
            p = seq.prefix_len + 100
            calls = {"step": lambda: lm.decode_step(torch.zeros(batch, dtype=torch.long), p, cache),
                     "chunk8": lambda: lm.decode_chunk(torch.zeros(batch, 8, dtype=torch.long), p, cache, seq.prefix_len)}  # fmt: skip

            def call(policy: str, name: str):
                cache.weights, cache.head = weights[policy]
                T.SMALL_ROWS = small if policy == "by_rows" else 0
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=policy.endswith("bf16")):
                    return calls[name]().float()

            for name in calls:
                ref = call("by_rows", name)
                diffs = {k: float((call(k, name) - ref).abs().max()) for k in POLICIES}
                ms = interleaved_ms({k: (lambda k=k: call(k, name)) for k in POLICIES}, rounds)
                rows = batch * (1 if name == "step" else 8)
                report["calls"][f"{name} batch {batch}"] = {"rows": rows, "ms": ms, "max_abs_logit_diff_vs_by_rows": diffs,
                                                            "fastest": min(ms, key=ms.get)}  # fmt: skip
    finally:
        T.SMALL_ROWS = small
    return report


def main() -> None:
    print(json.dumps(measure(VideoPoet.from_pretrained("tiny")), indent=1))


if __name__ == "__main__":
    main()
