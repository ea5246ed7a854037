"""Prompt reading on or off, same checkpoint, seeds and prompts: text-to-video adherence on prompts
in new wordings that are in neither caption split (tests/test_reader.py's dev vocabulary), read back by
the analyser. Usage: python eval/study/reader_ab.py [CHECKPOINT] [N]"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "tests")]
from model.analysis import adherence, read_clip  # noqa: E402
from model.pipeline import VideoPoet  # noqa: E402
from model.video_io import to_uint8  # noqa: E402
from test_reader import dev_prompts  # noqa: E402

ckpt = sys.argv[1] if len(sys.argv) > 1 else None
n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
torch.set_num_threads(1)
vp = VideoPoet.from_pretrained("tiny", checkpoint=ckpt)
rows = dev_prompts(n)
for read in (False, True):
    ok = np.zeros(4)
    for i, (p, c, s, m) in enumerate(rows):
        a = adherence(read_clip(to_uint8(vp.generate(p, seed=i, read_prompt=read))), c, s, m)
        ok += [a["color"], a["shape"], a["motion"], a["all"]]
    print(f"read_prompt={read}: colour / shape / motion / all three = " + " / ".join(f"{100 * x / n:.0f}%" for x in ok), f"(n={n})", flush=True)
