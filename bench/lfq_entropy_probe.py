"""How much of a tokenizer training step did the LFQ batch entropy cost? One step (batch 8 of the tiny
preset, forward and backward, random weights) with the batch-mean code distribution computed the old way,
an (N, 2**bits) table exponentiated, and the way `model/lfq.py` does now, an outer product of two halves
of the bits; interleaved, so that a machine busy with other work slows both alike.

    OMP_NUM_THREADS=2 python bench/lfq_entropy_probe.py [--rounds 5]   # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from model.config import load_preset
from model.lfq import LFQ, ids_to_bits
from model.tokenizer import VideoTokenizer


def table_distribution(self: LFQ, z: torch.Tensor) -> torch.Tensor:
    """The previous computation: every code's log-probability for every latent, then exp and mean."""
    pos = (ids_to_bits(torch.arange(2**self.bits, device=z.device), self.bits) > 0).to(z.dtype)
    logp, logq = F.logsigmoid(4 * z / self.temperature), F.logsigmoid(-4 * z / self.temperature)
    return (logp @ pos.T + logq @ (1 - pos).T).exp().mean(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = VideoTokenizer(load_preset("tiny").tokenizer).train()
    x = torch.rand(8, 17, 3, 64, 64) * 2 - 1
    ways = {"table": table_distribution, "halves": LFQ._batch_code_distribution}
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    try:
        for r in range(args.rounds + 1):  # round 0 warms up
            for name, f in ways.items():
                LFQ._batch_code_distribution = f
                tok.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                rec, _, aux, _ = tok(x, 1.0)
                (((rec - x) ** 2).mean() * 5 + aux).backward()
                if r:
                    seconds[name].append(time.perf_counter() - t0)
    finally:
        LFQ._batch_code_distribution = ways["halves"]
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(json.dumps({"threads": torch.get_num_threads(), "step_seconds": {k: round(v, 3) for k, v in med.items()},
                      "halves_over_table": round(med["halves"] / med["table"], 3)}))


if __name__ == "__main__":
    main()
