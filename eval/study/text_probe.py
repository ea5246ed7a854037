"""How much of a wording the frozen text encoder carries: a ceiling for the "unseen wordings" bar.

A linear probe per attribute (colour, shape, motion) on frozen all-MiniLM-L6-v2 features — the pooled
sentence vector plus the max over per-token states, what the LM's prefix holds — trained on train-split
captions, read on held-out-split captions (wordings and sentence shapes never in training) and on the
eval's 40 unseen-wording prompts. If the probe cannot read all three attributes of a held-out wording,
an LM conditioned on the same frozen features is not expected to either.

    OMP_NUM_THREADS=1 python eval/study/text_probe.py            # ~2 min on one core
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from model.data.captions import compose, eval_prompts
from model.data.world import BACKGROUNDS, COLORS, MOTIONS, SHAPES
from model.text import TextEncoder

ATTRS = {"color": list(COLORS), "shape": list(SHAPES), "motion": list(MOTIONS)}


def captions(n: int, split: str, seed: int) -> list[tuple[str, str, str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, s, m = (a[int(rng.integers(len(a)))] for a in ATTRS.values())
        bg = [b for b in BACKGROUNDS if b != c]
        out.append((compose(c, s, m, bg[int(rng.integers(len(bg)))], rng, split), c, s, m))
    return out


def features(enc: TextEncoder, texts: list[str]) -> torch.Tensor:
    states, valid, pooled = enc.encode(texts)
    mx = states.masked_fill(~valid[..., None], -1e4).max(1).values
    return torch.cat([pooled, mx], -1)


def fit(x: torch.Tensor, y: torch.Tensor, k: int, steps: int = 600) -> torch.nn.Linear:
    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    lin = torch.nn.Linear(x.shape[1], k)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
    xs = (x - mu) / sd
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xs), y).backward()
        opt.step()
    lin.mu, lin.sd = mu, sd  # type: ignore[attr-defined]
    return lin


def read(probes: dict, x: torch.Tensor, rows: list) -> dict:
    right = {}
    for i, (name, values) in enumerate(ATTRS.items()):
        lin = probes[name]
        pred = lin((x - lin.mu) / lin.sd).argmax(-1)
        right[name] = np.array([values[int(p)] == r[1 + i] for p, r in zip(pred, rows)])
    right["all"] = right["color"] & right["shape"] & right["motion"]
    return {k: round(float(v.mean()), 3) for k, v in right.items()} | {"n": len(rows)}


def main() -> None:
    torch.set_num_threads(1)
    enc = TextEncoder()
    train = captions(4000, "train", 1)
    x = features(enc, [r[0] for r in train])
    probes = {name: fit(x, torch.tensor([values.index(r[1 + i]) for r in train]), len(values))
              for i, (name, values) in enumerate(ATTRS.items())}  # fmt: skip
    report = {"train_split_captions": read(probes, x, train)}
    held = captions(2000, "heldout", 2)
    report["heldout_split_captions"] = read(probes, features(enc, [r[0] for r in held]), held)
    ev = eval_prompts("unseen_wordings")
    report["eval_unseen_wordings"] = read(probes, features(enc, [r[0] for r in ev]), ev)
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
