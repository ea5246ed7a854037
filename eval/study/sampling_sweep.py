"""Choose sampling settings on prompts the eval does not use: the canonical captions of the trained
colour-shape-motion combinations (108; the eval's held-out combinations excluded) and the dev prompts of
tests/test_reader.py (new wordings in neither caption split, read by the prompt reader), each drawn with
two seed sets and read back by the analyser. Usage:
  python eval/study/sampling_sweep.py "temperature=0.8;temperature=0.8,top_p=0.9" [CHECKPOINT]"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "tests")]
from model.analysis import adherence, read_clip  # noqa: E402
from model.data.captions import canonical_caption  # noqa: E402
from model.data.world import COLORS_LIST, HELD_OUT_COMBOS, MOTIONS, SHAPES  # noqa: E402
from model.pipeline import VideoPoet  # noqa: E402
from model.video_io import to_uint8  # noqa: E402
from test_reader import dev_prompts  # noqa: E402

SEED_SETS = (5000, 7000)  # clip i draws seed S + i; the eval uses 0 + i (and 100/200/300 + i for its seed table)

torch.set_num_threads(2)
vp = VideoPoet.from_pretrained("tiny", checkpoint=sys.argv[2] if len(sys.argv) > 2 else None)
trained = [(canonical_caption(c, s, m), c, s, m) for c in COLORS_LIST for s in SHAPES for m in MOTIONS
           if (c, s, m) not in HELD_OUT_COMBOS]  # fmt: skip
sets = {"trained": trained, "dev": [tuple(r) for r in dev_prompts(60)]}
for spec in sys.argv[1].split(";"):
    kw = {k: float(v) for k, v in (p.split("=") for p in spec.split(",") if p)}
    t0, line = time.time(), []
    for name, rows in sets.items():
        for base in SEED_SETS:
            ok = np.mean([adherence(read_clip(to_uint8(vp.generate(p, seed=base + i, read_prompt=True, **kw))), c, s, m)["all"]
                          for i, (p, c, s, m) in enumerate(rows)])  # fmt: skip
            line.append(f"{name}@{base} {100 * ok:.1f}%")
    print(f"{spec:32s} all three: " + "  ".join(line) + f"  ({time.time() - t0:.0f} s)", flush=True)
