"""LM design study, step 2 (GPU): train LM variants on the set prep_lm_data.py wrote and compare them.

    PYTHONPATH=. python eval/study/compare_lm.py OUT STEPS NAME:ROPE:LR:BATCH[:STEPS[:DIM:LAYERS:HEADS:MLP]] ...

For each variant: `train_lm` (the project's trainer, six-task mixture), then the teacher-forced
cross-entropy per latent frame (model.diagnostics) and text-to-video adherence on the 36 held-out-combination
and 40 unseen-wording prompts (CFG 3, seed 0, read by model.analysis). Writes OUT/compare.json.
eval/study/lm-variants-h200.json holds the run the README's model card quotes.
"""
import sys, json, time, dataclasses, os
import torch, numpy as np
from pathlib import Path
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from model.config import SamplingOptions, load_preset
from model.train.lm import train_lm
from model.pipeline import VideoPoet
from model.diagnostics import teacher_forced
from model.data.captions import eval_prompts
from model.analysis import read_clip, adherence
from model.sampling import sample
from model import tasks
from model.video_io import to_uint8

out_root, steps, variants = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
work = Path("/tmp/cmp"); work.mkdir(exist_ok=True)
d = load_file(".gpu/data.safetensors")
with safe_open(".gpu/data.safetensors", "pt") as f: meta = f.metadata()
d["text_states"] = (d["text_states"].float() * d.pop("text_scale").float()).half()
save_file(d, work / "data.safetensors", metadata=meta)
pf = load_file(".gpu/prompts.safetensors")
with safe_open(".gpu/prompts.safetensors", "pt") as f: prompts = f.metadata()["prompts"].split("\n")
dev = os.environ.get("DEV", "cuda")
results = {}
for v in variants:
    name, rope, lr, batch, *st = v.split(":")
    steps_v = int(st[0]) if st else steps
    p = load_preset("tiny"); p.lm.rope = rope
    if len(st) > 1:
        p.lm.dim, p.lm.n_layers, p.lm.n_heads, p.lm.mlp_hidden = map(int, st[1:5])
    o = work / name
    t0 = time.time()
    r = train_lm(p, work / "data.safetensors", Path(".gpu/tokenizer.safetensors"), o, steps_v, int(batch), float(lr), save_every=10**9, log=lambda s: None)
    tt = time.time() - t0
    vp = VideoPoet.from_pretrained(str(o / "videopoet.safetensors"), device=dev)
    for i, pr in enumerate(prompts):
        vp._text_cache[pr] = (pf["states"][i].float(), pf["valid"][i], pf["pooled"][i].float())
    tf = teacher_forced(vp)
    res = {"train_s": tt, "loss_ema": r["loss_ema"], "tf": tf}
    for kind in ("heldout_combos", "unseen_wordings"):
        ep = eval_prompts(kind)
        s, va, po = vp.encode_text([x[0] for x in ep])
        seq = tasks.build("t2v", s, va, po, 320)
        g = torch.Generator(device=dev).manual_seed(0)
        ids = sample(vp.lm, seq, SamplingOptions(guidance=3.0), generator=g)
        video = vp.tokenizer.decode(ids.view(len(ep), 5, 8, 8))
        rows = []
        for k, (prompt, c, sh, m) in enumerate(ep):
            rd = read_clip(to_uint8(video[k].float().cpu()))
            rows.append(adherence(rd, c, sh, m))
        res[kind] = {a: float(np.mean([row[a] for row in rows])) for a in ("color", "shape", "motion", "all")}
    results[name] = res
    print(name, json.dumps(res), flush=True)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "compare.json").write_text(json.dumps(results, indent=1))
