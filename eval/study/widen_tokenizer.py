"""Write a starting point for a tokenizer with more LFQ bits: the shipped tokenizer with BITS bits per
cell, its 12 trained bits kept (new encoder output rows random at half the old rows' scale, new decoder
input columns zero, so it starts as the shipped tokenizer), plus a preset YAML naming that tokenizer.

Usage: python eval/study/widen_tokenizer.py 16 runs/b16
       videopoet train tokenizer --preset runs/b16/preset.yaml --init runs/b16/init.safetensors ...
"""

import dataclasses
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]
from model.checkpoint import load_into, read_checkpoint, save_checkpoint  # noqa: E402
from model.config import load_preset  # noqa: E402
from model.tokenizer import VideoTokenizer  # noqa: E402


def widen(bits: int, out: Path) -> None:
    preset = load_preset("tiny")
    old = VideoTokenizer(preset.tokenizer)
    weights = ROOT / "presets" / "tiny.safetensors"
    load_into(old, read_checkpoint(weights)[0], "tokenizer", weights)
    n = preset.tokenizer.bits
    if bits < n:
        raise SystemExit(f"BITS must be at least the shipped {n}")
    cfg = dataclasses.replace(preset.tokenizer, bits=bits)
    new = VideoTokenizer(cfg)
    state, torch_gen = new.state_dict(), torch.Generator().manual_seed(0)
    for k, v in old.state_dict().items():
        w = torch.zeros_like(state[k])
        if k == "encoder.conv_out.conv.weight":
            w = torch.randn(w.shape, generator=torch_gen) * v.std() * 0.5
        w[tuple(slice(0, s) for s in v.shape)] = v  # the trained part, in place
        state[k] = w
    new.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "init.safetensors", {"tokenizer": new}, {"tokenizer": dataclasses.asdict(cfg)}, "tokenizer")
    y = yaml.safe_load((ROOT / "presets" / "tiny.yaml").read_text())
    y.update(name=f"tiny-b{bits}", description=f"study: the shipped tokenizer widened to {bits} bits", weights=None)
    y["tokenizer"]["bits"] = bits
    (out / "preset.yaml").write_text(yaml.safe_dump(y, sort_keys=False))
    print(f"wrote {out / 'init.safetensors'} and {out / 'preset.yaml'}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        raise SystemExit(__doc__)
    widen(int(sys.argv[1]), Path(sys.argv[2]))
