"""LM design study, step 1 (CPU): a small pre-tokenized set for comparing LM variants at equal steps.

    python eval/study/prep_lm_data.py TOKENIZER.safetensors N_CLIPS [THREADS]

Writes .gpu/data.safetensors (N world clips of data seed 2, one training caption each, a quarter with
control videos; text states stored as int8 with a per-token scale so the set fits a 64 MiB transfer to a
GPU machine), .gpu/prompts.safetensors (MiniLM states of the eval prompts) and .gpu/tokenizer.safetensors
(bf16). Then run compare_lm.py where a GPU is (or on the CPU with DEV=cpu and few steps).
"""
import sys, torch, numpy as np
from pathlib import Path
from safetensors.torch import save_file
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
from model.config import load_preset
from model.tokenizer import VideoTokenizer
from model.checkpoint import read_checkpoint, load_into
from model.text import TextEncoder
from model.train.lm import pretokenize
from model.data.sources import world_clips
from model.data.captions import eval_prompts, canonical_caption
from model.data import world
from model.diagnostics import DIAG_SEED
tokpath, n = Path(sys.argv[1]), int(sys.argv[2])
p = load_preset("tiny"); t = p.tokenizer
tok = VideoTokenizer(t); tt, _ = read_checkpoint(tokpath); load_into(tok, tt, "tokenizer", tokpath)
enc = TextEncoder(p.lm.max_text_tokens)
cs = world_clips(n, 2, t.frames, t.height, captions_per_clip=1)
pretokenize(tok, enc.encode, cs.clips, cs.captions, n // 4, Path(".gpu/full.safetensors"))
d, meta = read_checkpoint(Path(".gpu/full.safetensors"))
st = d["text_states"].float()
scale = st.abs().amax(-1, keepdim=True).clamp_min(1e-6) / 127
d["text_states"] = (st / scale).round().to(torch.int8); d["text_scale"] = scale.half()
save_file(d, ".gpu/data.safetensors", metadata=meta)
Path(".gpu/full.safetensors").unlink()
prompts = [x[0] for x in eval_prompts("heldout_combos")] + [x[0] for x in eval_prompts("unseen_wordings")]
scenes, _ = world.render_clips(32, DIAG_SEED, t.frames, t.height, allow_held_out=True)
prompts += [canonical_caption(s.color, s.shape, s.motion) for s in scenes]
prompts = list(dict.fromkeys(prompts))
s, v, po = enc.encode(prompts)
save_file({"states": s.half(), "valid": v, "pooled": po.half()}, ".gpu/prompts.safetensors", metadata={"prompts": "\n".join(prompts)})
tok_bf = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tt.items()}
save_file(tok_bf, ".gpu/tokenizer.safetensors", metadata=read_checkpoint(tokpath)[1])
print("ok", {k: tuple(v.shape) for k, v in d.items()})
