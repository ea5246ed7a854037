"""Optimizer study (CPU): does Muon (on the blocks' matrices) learn the LM in fewer updates than AdamW?

    OMP_NUM_THREADS=1 PYTHONPATH=. python eval/study/optimizer_probe.py DATA TOKENIZER OUT STEPS NAME:OPTIMIZER:LR [...]

DATA: a pre-tokenized lm-data file (`videopoet train lm` writes one into its --out folder), TOKENIZER: the
checkpoint that made it. Each variant is trained from scratch by the project's `train_lm` (the default
eight-task mixture, batch 24, 50 warm-up steps, seed 0: every variant sees the same batches), then
scored by the teacher-forced cross-entropy per latent frame on 128 held-out clips (model.diagnostics).
Appends to OUT/optimizer.json.
"""
import json
import sys
import time
from pathlib import Path

import torch

from model.config import load_preset
from model.diagnostics import teacher_forced
from model.pipeline import VideoPoet
from model.train.lm import train_lm

data, tokenizer, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
for spec in sys.argv[5:]:
    name, optimizer, lr = spec.split(":")
    preset = load_preset("tiny")
    t0 = time.time()
    losses = []
    r = train_lm(preset, data, tokenizer, out / name, steps, batch=24, lr=float(lr), warmup=50, save_every=10**9,
                 optimizer=optimizer, log=lambda s: None,
                 on_progress=lambda i, n, m: losses.append(round(m["loss_ema"], 4)) if i % 25 == 0 else None)
    wall = time.time() - t0
    vp = VideoPoet.from_pretrained(str(out / name / "videopoet.safetensors"), device="cpu")
    with torch.no_grad():
        tf = teacher_forced(vp, n=128)
    row = {"optimizer": optimizer, "lr": float(lr), "steps": steps, "train_s": round(wall), "loss_ema_every_25": losses,
           "tf_ce": tf["cross_entropy"], "tf_ce_per_latent_frame": tf["cross_entropy_per_latent_frame"],
           "tf_top1": tf["top1"], "tf_top1_per_latent_frame": tf["top1_per_latent_frame"]}
    path = out / "optimizer.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    rows[name] = row
    path.write_text(json.dumps(rows, indent=1))
    print(name, json.dumps(row), flush=True)
