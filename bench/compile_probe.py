"""Does torch.compile pay for the decode step? Eager vs compiled `sample` on the shipped weights, same tokens.

    OMP_NUM_THREADS=2 python bench/compile_probe.py            # idle machine; ~2-4 min (compilation included)

Prints one JSON object: per-token decode time eager and compiled (batch 1 = guidance 1, batch 2 = guidance 3),
the one-off compile time, whether the compiled sampler gives the eager tokens, and the outcome of each mode
tried (a mode that fails to compile is recorded with its error, not hidden).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from common import t2v_sequence  # noqa: E402  (bench/ is on sys.path when run as a script)
from model.config import SamplingOptions
from model.pipeline import VideoPoet
from model.sampling import sample

N_OUT = 320


def per_token_ms(vp: VideoPoet, seq, options: SamplingOptions, reps: int = 3) -> tuple[float, torch.Tensor]:
    times, ids = [], None
    for i in range(reps):
        t = time.perf_counter()
        ids = sample(vp.lm, seq, options, generator=torch.Generator().manual_seed(1))
        times.append(time.perf_counter() - t)
    return statistics.median(times) / N_OUT * 1e3, ids


def measure(vp: VideoPoet, reps: int = 3) -> dict:
    """Eager vs torch.compile'd decode step inside `sample`, batch 1 (guidance 1) and 2 (guidance 3)."""
    seq = t2v_sequence(vp.preset, N_OUT)
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": []}
    eager_step = vp.lm.decode_step
    for batch, guidance in ((1, 1.0), (2, 3.0)):
        o = SamplingOptions(guidance=guidance)
        ms, ref = per_token_ms(vp, seq, o, reps)
        report["rows"].append({"batch": batch, "mode": "eager", "ms_per_token": ms})
        for mode in ("default", "max-autotune-no-cudagraphs"):
            row = {"batch": batch, "mode": mode}
            try:
                torch._dynamo.reset()
                vp.lm.decode_step = torch.compile(eager_step, mode=mode, dynamic=True)
                t = time.perf_counter()
                _, first = per_token_ms(vp, seq, o, reps=1)  # compiles on the first calls
                row["first_run_s"] = time.perf_counter() - t
                ms_c, ids = per_token_ms(vp, seq, o, reps)
                row.update(ms_per_token=ms_c, speedup=ms / ms_c, same_tokens=bool(torch.equal(ids, ref)))
            except Exception as e:  # record the failure: a mode that does not compile here is an outcome
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            finally:
                vp.lm.decode_step = eager_step
            report["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    torch._dynamo.reset()
    return report


def main() -> None:
    print(json.dumps(measure(VideoPoet.from_pretrained("tiny")), indent=1))


if __name__ == "__main__":
    main()
