"""Training: loss goes down, an interrupted-and-resumed run equals an uninterrupted one, torchrun works."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from model.checkpoint import CheckpointError, read_checkpoint
from model.config import load_preset, preset_from_dict
from model.controls import control_video
from model.data.sources import world_clips
from model.pipeline import VideoPoet
from model.tokenizer import VideoTokenizer
from model.errors import InvalidInput
from model.train.lm import MIXTURE, TokenData, lm_loss, parse_mixture, pretokenize, train_lm
from model.train.tokenizer import train_tokenizer

torch.set_num_threads(1)


def micro_preset():
    d = load_preset("tiny").to_dict()
    d.update(name="micro", weights=None)
    d["tokenizer"].update(height=32, width=32, channels=[8, 16], res_blocks=1, bits=6)
    d["lm"].update(dim=32, n_layers=2, n_heads=2, mlp_hidden=64, max_text_tokens=8)
    return preset_from_dict(d, "<micro>"), d


def fake_text(texts):
    """A deterministic stand-in for MiniLM (keeps these tests about training, and fast)."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(1000, 384, generator=g)
    ids = torch.tensor([[hash(w) % 1000 for w in (t.split() + [""] * 8)[:8]] for t in texts])
    states = table[ids]
    valid = torch.tensor([[i < len(t.split()) for i in range(8)] for t in texts])
    return states, valid, states.mean(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    preset, d = micro_preset()
    t = preset.tokenizer
    clips = world_clips(24, seed=5, frames=t.frames, size=t.height)
    tok_dir = tmp / "tok"
    train_tokenizer(t, clips.clips, np.stack([control_video(c) for c in clips.clips[:4]]), clips.clips[:4], tok_dir,
                    steps=2, batch=2, log=lambda s: None)  # fmt: skip
    tok = VideoTokenizer(t)
    from model.checkpoint import load_into, read_checkpoint

    tensors, _ = read_checkpoint(tok_dir / "tokenizer.safetensors")
    load_into(tok, tensors, "tokenizer", tok_dir)
    data = tmp / "data.safetensors"
    pretokenize(tok, fake_text, clips.clips, clips.captions, 8, data, log=lambda s: None)
    yaml_path = tmp / "micro.yaml"
    yaml_path.write_text(yaml.safe_dump(d))
    return preset, tok_dir / "tokenizer.safetensors", data, tmp, clips


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_tokenizer_training_lowers_loss(setup, tmp_path, optimizer):
    preset, _, _, _, clips = setup
    from model.train.tokenizer import reconstruction_psnr

    torch.manual_seed(0)
    before = reconstruction_psnr(VideoTokenizer(preset.tokenizer), clips.clips[:8])
    r = train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:8], tmp_path, steps=60, batch=4, lr=3e-3,
                        warmup=5, eval_every=60, log=lambda s: None, optimizer=optimizer)  # fmt: skip
    assert r["psnr_held_out"] > before + 2.5  # AdamW: +2.8 dB in float32, +3.2 under bf16 autocast
    with pytest.raises(CheckpointError, match=f"--optimizer {optimizer}"):
        other = "muon" if optimizer == "adamw" else "adamw"
        train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:8], tmp_path, steps=61, batch=4, resume=True,
                        log=lambda s: None, optimizer=other)  # fmt: skip


def test_gradient_loss_is_zero_on_the_target_punishes_blur_and_ignores_flat_offsets():
    from model.train.tokenizer import gradient_loss

    x = torch.full((1, 2, 3, 16, 16), -1.0)
    x[..., 5:11, 5:11] = 1.0  # a sharp square
    blurred = torch.nn.functional.avg_pool2d(x.flatten(0, 2)[:, None], 3, stride=1, padding=1, count_include_pad=False).view_as(x)
    assert float(gradient_loss(x, x)) == 0.0
    assert float(gradient_loss(blurred, x)) > 0.05
    assert float(gradient_loss(x + 0.3, x)) < 1e-6  # a flat brightness change has the same edges


def test_edge_weight_adds_the_gradient_term_to_the_training_loss(setup, tmp_path):
    preset, tok_path, _, _, clips = setup
    runs = [train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:2], tmp_path / str(w), steps=1, batch=2,
                            init=tok_path, decoder_only=True, edge_weight=w, log=lambda s: None) for w in (0.0, 2.0)]  # fmt: skip
    assert runs[1]["loss"] > runs[0]["loss"]  # same step, same batch: only the added term differs
    assert runs[0]["psnr_batch"] == pytest.approx(runs[1]["psnr_batch"])


def test_decoder_only_fine_tune_keeps_every_id_and_swaps_into_a_full_model(setup, tmp_path):
    """--decoder-only trains the decoder and leaves the encoder bit-for-bit: an LM trained on the old ids
    stays valid with the new decoder, and export refuses a tokenizer whose encoder moved."""
    preset, tok_path, data_path, _, clips = setup
    from model.checkpoint import CheckpointError, load_into, read_checkpoint
    from model.tokenizer import VideoTokenizer
    from model.train.tokenizer import reconstruction_psnr
    from model.video_io import from_uint8

    def load(path):
        tok = VideoTokenizer(preset.tokenizer)
        load_into(tok, read_checkpoint(path)[0], "tokenizer", path)
        return tok

    old = load(tok_path)
    before = reconstruction_psnr(old, clips.clips[:8])
    r = train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:8], tmp_path / "dec", steps=40, batch=4, lr=3e-3,
                        warmup=5, eval_every=40, init=tok_path, decoder_only=True, log=lambda s: None)  # fmt: skip
    new = load(tmp_path / "dec" / "tokenizer.safetensors")
    assert r["psnr_held_out"] > before + 1.0
    for k, v in old.state_dict().items():
        assert torch.equal(v, new.state_dict()[k]) == (not k.startswith("decoder.")), k
    x = torch.stack([from_uint8(c) for c in clips.clips[:4]])
    assert torch.equal(old.encode(x), new.encode(x))

    full = tmp_path / "full"
    train_lm(preset, data_path, tok_path, full, steps=1, batch=2, log=lambda s: None)
    vp = VideoPoet.from_pretrained(str(full / "videopoet.safetensors"))
    vp.replace_decoder(tmp_path / "dec" / "tokenizer.safetensors")
    assert all(torch.equal(v, new.decoder.state_dict()[k]) for k, v in vp.tokenizer.decoder.state_dict().items())
    moved = train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:4], tmp_path / "moved", steps=2, batch=2,
                            init=tok_path, log=lambda s: None)  # fmt: skip
    assert moved["step"] == 2
    with pytest.raises(CheckpointError, match="encoder|--decoder-only"):
        vp.replace_decoder(tmp_path / "moved" / "tokenizer.safetensors")


def test_reference_blend_training_touches_nothing_else_resumes_exactly_and_swaps_into_a_full_model(setup, tmp_path):
    """--reference trains only the blend: every other tensor of the init tokenizer stays bit for bit, a run
    stopped and resumed ends where an uninterrupted one does, and export takes the blend along."""
    preset, tok_path, data_path, _, _ = setup
    from model.checkpoint import load_into, read_checkpoint
    from model.data.world import reference_pairs
    from model.train.reference import train_reference_blend

    t = preset.tokenizer
    refs, clips = reference_pairs(12, 3, t.frames, t.height)
    kw = dict(batch=2, lr=3e-3, warmup=2, log=lambda s: None)
    r = train_reference_blend(t, tok_path, refs, clips, refs[:4], clips[:4], tmp_path / "a", steps=6, **kw)
    assert r["step"] == 6 and r["psnr_held_out_reference"] > 0
    train_reference_blend(t, tok_path, refs, clips, refs[:4], clips[:4], tmp_path / "b", steps=3, **kw)
    train_reference_blend(t, tok_path, refs, clips, refs[:4], clips[:4], tmp_path / "b", steps=6, resume=True, **kw)
    a, meta = read_checkpoint(tmp_path / "a" / "tokenizer.safetensors")
    b, _ = read_checkpoint(tmp_path / "b" / "tokenizer.safetensors")
    old, _ = read_checkpoint(tok_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    blend = {k for k in a if k.startswith("tokenizer.reference_blend.")}
    assert blend and all(k in blend for k in set(a) - set(old))
    assert all(torch.equal(old[k], a[k]) for k in old if k not in blend)
    assert any(not torch.equal(old[k], a[k]) for k in blend if k in old) or not blend & set(old)

    full = tmp_path / "full"
    train_lm(preset, data_path, tok_path, full, steps=1, batch=2, log=lambda s: None)
    vp = VideoPoet.from_pretrained(str(full / "videopoet.safetensors"))
    vp.replace_decoder(tmp_path / "a" / "tokenizer.safetensors")
    assert vp.preset.tokenizer.reference and vp.tokenizer.reference_blend is not None
    tok = VideoTokenizer(vp.preset.tokenizer)
    load_into(tok, a, "tokenizer", tmp_path / "a")
    assert all(torch.equal(v, vp.tokenizer.state_dict()[k]) for k, v in tok.state_dict().items())
    vp.save(tmp_path / "with-blend.safetensors")
    again = VideoPoet.from_pretrained(str(tmp_path / "with-blend.safetensors"))
    assert again.preset.tokenizer.reference and again.tokenizer.reference_blend is not None


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_lm_training_lowers_loss(setup, tmp_path, optimizer):
    preset, tok_path, data_path, _, _ = setup
    data = TokenData(data_path, preset.tokenizer.tokens_per_latent_frame(), 0.0)
    seq, target = data.batch("t2v", 8, np.random.default_rng(0), "cpu")
    torch.manual_seed(0)
    from model.transformer import PrefixLM

    with torch.no_grad():
        before = float(lm_loss(PrefixLM.for_tokenizer(preset.lm, preset.tokenizer), seq, target))
    train_lm(preset, data_path, tok_path, tmp_path, steps=80, batch=8, lr=3e-3, warmup=5, log=lambda s: None, optimizer=optimizer)
    vp = VideoPoet.from_pretrained(str(tmp_path / "videopoet.safetensors"))
    with torch.no_grad():
        after = float(lm_loss(vp.lm, seq, target))
    assert after < before - 0.3, (before, after)


@pytest.mark.parametrize("fast", [True, False])
def test_training_autocasts_to_bf16_only_where_bf16_is_fast(monkeypatch, fast):
    """On an AVX2-only CPU bf16 is many times slower than float32 (README, Training your own): float32 there."""
    from model.train import common

    monkeypatch.setattr(common, "fast_bf16", lambda device: fast)
    cpu = torch.device("cpu")
    with common.autocast(cpu):
        assert torch.is_autocast_enabled("cpu") == fast
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if fast else torch.float32)
    with common.autocast(cpu, enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    assert common.precision(cpu).startswith("bf16" if fast else "float32")


def test_trainers_say_which_precision_they_train_in(setup, tmp_path):
    from model.train.common import precision

    preset, tok_path, data_path, _, clips = setup
    lines: list[str] = []
    train_lm(preset, data_path, tok_path, tmp_path / "lm", steps=1, batch=2, log=lines.append)
    train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:2], tmp_path / "tok", steps=1, batch=2, log=lines.append)
    assert lines.count(f"precision: {precision(torch.device('cpu'))}") == 2, lines


def test_train_lm_takes_batches_from_the_token_data_given(setup, tmp_path):
    """A study may lay out some batches its own way (eval/study/drift_finetune.py): train_lm must use it."""
    preset, tok_path, data_path, _, _ = setup
    asked: list[str] = []

    class Recording(TokenData):
        def batch(self, task, B, rng, device):
            asked.append(task)
            return super().batch(task, B, rng, device)

    data = Recording(data_path, preset.tokenizer.tokens_per_latent_frame(), preset.lm.text_dropout)
    r = train_lm(preset, data_path, tok_path, tmp_path, steps=3, batch=2, log=lambda s: None, data=data)
    assert r["step"] == 3 and len(asked) == 3 and set(asked) <= set(MIXTURE)


def test_compiled_training_takes_the_eager_steps(setup, tmp_path):
    """`train lm --compile`: the same batches give the same losses (to float rounding: fused kernels sum in
    another order), and the checkpoint has the plain module's names, so it loads as any other."""
    preset, tok_path, data_path, _, _ = setup
    only = {"t2v": 1.0}  # one layout: one graph to compile
    eager = train_lm(preset, data_path, tok_path, tmp_path / "a", steps=3, batch=2, mixture=only, log=lambda s: None)
    torch._dynamo.utils.counters.clear()
    compiled = train_lm(preset, data_path, tok_path, tmp_path / "b", steps=3, batch=2, mixture=only, log=lambda s: None, compile=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile, not fall back to eager
    assert compiled["step"] == 3
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-3)
    tensors, _ = read_checkpoint(tmp_path / "b" / "videopoet.safetensors")
    assert "lm.head.weight" in tensors and not any("_orig_mod" in k for k in tensors)


def test_compiled_tokenizer_training_takes_the_eager_steps(setup, tmp_path):
    preset, _, _, _, clips = setup
    torch._dynamo.utils.counters.clear()
    runs = [train_tokenizer(preset.tokenizer, clips.clips, None, clips.clips[:2], tmp_path / name, steps=2, batch=2,
                            log=lambda s: None, compile=name == "compiled") for name in ("eager", "compiled")]  # fmt: skip
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert runs[1]["loss"] == pytest.approx(runs[0]["loss"], rel=1e-3)
    tensors, _ = read_checkpoint(tmp_path / "compiled" / "tokenizer.safetensors")
    assert tensors and not any("_orig_mod" in k for k in tensors)


@pytest.mark.parametrize("sig,optimizer", [(signal.SIGINT, "adamw"), (signal.SIGTERM, "adamw"), (signal.SIGTERM, "muon")])
def test_interrupted_and_resumed_equals_uninterrupted(setup, tmp_path, sig, optimizer):
    preset, tok_path, data_path, _, _ = setup
    kw = dict(steps=8, batch=4, log=lambda s: None, optimizer=optimizer)
    straight = train_lm(preset, data_path, tok_path, tmp_path / "a", **kw)

    def interrupt(step, total, metrics):
        if step == 4:
            os.kill(os.getpid(), sig)  # Ctrl-C, or `kill`: the loop saves and stops

    first = train_lm(preset, data_path, tok_path, tmp_path / "b", on_progress=interrupt, **kw)
    assert first["stopped"] and first["step"] == 4
    resumed = train_lm(preset, data_path, tok_path, tmp_path / "b", resume=True, **kw)
    assert resumed["step"] == 8
    assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-5, abs=1e-6)


def test_resume_with_another_optimizer_is_refused(setup, tmp_path):
    """Its saved state would be the other optimizer's (AdamW moments are not Muon's momentum)."""
    preset, tok_path, data_path, _, _ = setup
    train_lm(preset, data_path, tok_path, tmp_path, steps=2, batch=2, log=lambda s: None)
    with pytest.raises(CheckpointError, match="--optimizer adamw"):
        train_lm(preset, data_path, tok_path, tmp_path, steps=4, batch=2, resume=True, optimizer="muon", log=lambda s: None)


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest(setup):
    """Muon orthogonalises hidden layers' matrices only; embeddings, head, norms, biases stay with AdamW
    (the usual split), and weight decay never touches a vector."""
    from model.train.common import MuonAdamW, make_optimizer
    from model.transformer import PrefixLM

    preset = setup[0]
    lm = PrefixLM.for_tokenizer(preset.lm, preset.tokenizer)
    opt = make_optimizer("muon", list(lm.named_parameters()), 1e-3, hidden=lambda n, p: n.startswith("blocks."))
    assert isinstance(opt, MuonAdamW)
    names = {id(p): n for n, p in lm.named_parameters()}
    muon = {names[id(p)] for g in opt.muon.param_groups for p in g["params"]}
    assert muon == {n for n, p in lm.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    adam = [(names[id(p)], g["weight_decay"]) for g in opt.adamw.param_groups for p in g["params"]]
    assert {n for n, _ in adam} | muon == set(names.values()) and not {n for n, _ in adam} & muon
    assert all((wd > 0) == (lm.get_parameter(n).dim() == 2) for n, wd in adam)
    assert {"embed.weight", "head.weight"} <= {n for n, _ in adam}
    with pytest.raises(ValueError, match="adamw, muon"):
        make_optimizer("sgd", list(lm.named_parameters()), 1e-3, hidden=lambda n, p: True)


def test_torchrun_two_processes(setup, tmp_path):
    preset, tok_path, data_path, tmp, _ = setup
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", "-m", "videopoet_cli", "train", "lm",
           "--preset", str(tmp / "micro.yaml"), "--tokenizer", str(tok_path), "--data", "world:16", "--controls", "4",
           "--steps", "3", "--batch", "2", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done: step 3" in r.stderr
    assert (tmp_path / "videopoet.safetensors").exists()


def test_user_folder_skips_unreadable_files_and_counts_them(tmp_path):
    import json

    from model.data.sources import folder_clips, write_world

    write_world(tmp_path, 3, seed=1, frames=9, size=32, fps=8)
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"not a video")
    with open(tmp_path / "captions.jsonl", "a") as f:
        f.write(json.dumps({"video": "clips/broken.mp4", "caption": "x"}) + "\n")
        f.write(json.dumps({"video": "clips/missing.mp4", "caption": "y"}) + "\n")
        f.write("{not json\n")
        f.write("[1, 2]\n")
        f.write(json.dumps({"video": "clips/broken.mp4", "caption": "   "}) + "\n")
        outside = tmp_path.parent / f"{tmp_path.name}-outside.mp4"
        shutil.copy(next((tmp_path / "clips").glob("*.mp4")), outside)  # a readable clip, outside the folder
        (tmp_path / "clips" / "link.mp4").symlink_to(outside)
        for escaping in (f"../{outside.name}", str(outside), "clips/link.mp4"):
            f.write(json.dumps({"video": escaping, "caption": "z"}) + "\n")
    clips = folder_clips(tmp_path, frames=9, size=16, fps=8, log=lambda s: None)
    assert clips.clips.shape == (3, 9, 16, 16, 3)
    assert clips.skipped == {"unreadable (VideoPoetError)": 2, "bad captions.jsonl line": 2, "empty caption": 1,
                             "path outside the data folder": 3}, clips.skipped  # fmt: skip
    assert len(clips.captions) == 3 and all(len(c) == 1 and c[0] for c in clips.captions)


def test_train_cli_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from videopoet_cli.main import app

    r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "not found" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", "tokenizer", "--data", str(tmp_path / "nodir"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "not a folder" in r.output
    (tmp_path / "tok.safetensors").write_bytes(b"x")
    r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "tok.safetensors"), "--data", str(tmp_path),
                                 "--wall-clips", "5", "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 2 and "--wall-clips" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "tok.safetensors"), "--mixture", "continue=2",
                                 "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 2 and "--mixture" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", "tokenizer", "--init", str(tmp_path / "tok.safetensors"), "--reference", "--optimizer", "muon",
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "--optimizer" in r.output and "Traceback" not in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "tok.safetensors"), "--optimizer", "sgd",
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "--optimizer" in r.output and "Traceback" not in r.output and not (tmp_path / "o").exists()
    for bad, needle in (("world:many", "whole number"), ("world:0", "1..1000000")):
        r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "tok.safetensors"), "--data", bad, "--out", str(tmp_path)])
        assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
    # --compile on a CPU without a C++ compiler: said before any data is made, not a compiler traceback later
    r = CliRunner().invoke(app, ["train", "lm", "--tokenizer", str(tmp_path / "tok.safetensors"), "--compile", "--out", str(tmp_path / "c")],
                           env={"PATH": str(tmp_path), "CXX": ""})  # fmt: skip
    if not torch.cuda.is_available():
        assert r.exit_code == 2 and "--compile" in r.output and "compiler" in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "c").exists()


def test_wall_clips_train_continuation_only(setup, tmp_path):
    """Clips whose object bounces off a wall feed the continuation task (half its samples) and no other:
    their captions name the motion before the bounce."""
    from model.checkpoint import atomic_save, read_checkpoint

    preset, tok_path, _, _, _ = setup
    t = preset.tokenizer
    clips = world_clips(6, seed=6, frames=t.frames, size=t.height, wall_clips=4)
    assert clips.continue_only == 4 and len(clips.clips) == len(clips.captions) == 10
    tok = VideoTokenizer(t)
    from model.checkpoint import load_into

    load_into(tok, read_checkpoint(tok_path)[0], "tokenizer", tok_path)
    path = tmp_path / "walls.safetensors"
    pretokenize(tok, fake_text, clips.clips, clips.captions, 2, path, log=lambda s: None, continue_only=4)
    data = TokenData(path, t.tokens_per_latent_frame(), 0.0)
    flat = data.ids.flatten(1)

    def source(out: torch.Tensor) -> int:
        (i,) = [i for i in range(len(flat)) if torch.equal(flat[i, -out.shape[0] :], out)]
        return i

    rng = np.random.default_rng(0)
    for task in ("t2v", "i2v", "inpaint", "stylize"):
        assert all(source(o) < 6 for _ in range(5) for o in data.batch(task, 8, rng, "cpu")[1])
    from_walls = [source(o) >= 6 for _ in range(10) for o in data.batch("continue", 8, rng, "cpu")[1]]
    assert 0.3 < np.mean(from_walls) < 0.7

    tensors, meta = read_checkpoint(path)  # a data file written before wall clips existed: none of them
    del meta["continue_only"]
    atomic_save(tensors, tmp_path / "old.safetensors", meta)
    assert TokenData(tmp_path / "old.safetensors", t.tokens_per_latent_frame(), 0.0).continue_only == 0


def test_pretokenize_with_control_videos_made_beforehand_writes_the_same_data(setup, tmp_path):
    """A process pool may make the control videos (eval/study/gpu_retrain.py): the data file must not change."""
    preset, tok_path, _, _, clips = setup
    tok = VideoTokenizer(preset.tokenizer)
    from model.checkpoint import load_into, read_checkpoint

    load_into(tok, read_checkpoint(tok_path)[0], "tokenizer", tok_path)
    n = 5
    made = (np.stack([control_video(c) for c in clips.clips[:n]]), np.stack([control_video(c, motion_only=True) for c in clips.clips[:n]]))
    pretokenize(tok, fake_text, clips.clips, clips.captions, n, tmp_path / "a.safetensors", batch=2, log=lambda s: None)
    pretokenize(tok, fake_text, clips.clips, clips.captions, n, tmp_path / "b.safetensors", batch=2, log=lambda s: None, control_videos=made)
    a, b = read_checkpoint(tmp_path / "a.safetensors")[0], read_checkpoint(tmp_path / "b.safetensors")[0]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert len(a["style_ids"]) == len(a["motion_ids"]) == n and not torch.equal(a["style_ids"], a["motion_ids"])
    pretokenize(tok, fake_text, clips.clips, clips.captions, n, tmp_path / "c.safetensors", batch=2, log=lambda s: None,
                control_videos=made[::-1])  # fmt: skip
    c = read_checkpoint(tmp_path / "c.safetensors")[0]  # the videos given are the ones encoded
    assert torch.equal(c["style_ids"], a["motion_ids"]) and torch.equal(c["motion_ids"], a["style_ids"])


def test_mixture_spec_changes_named_shares_and_keeps_the_rest_in_proportion():
    m = parse_mixture("continue=0.3, t2v=0.38")
    assert set(m) == set(MIXTURE) and abs(sum(m.values()) - 1) < 1e-9
    assert m["continue"] == 0.3 and m["t2v"] == 0.38
    assert abs(m["inpaint"] / m["i2v"] - MIXTURE["inpaint"] / MIXTURE["i2v"]) < 1e-9
    assert parse_mixture("") == pytest.approx(MIXTURE)
    for bad, needle in [("jump=0.1", "task=share"), ("continue", "task=share"), ("continue=lots", "number"),
                        ("continue=1.5", r"\[0, 1\]"), ("continue=0.7,t2v=0.5", "add up to 1")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=needle):
            parse_mixture(bad)


def test_context_noise_touches_only_continuation_inputs(setup):
    """Context noise replaces some known ids of continuation samples with random ids, at most the given
    rate on average, and never the targets or another task's inputs."""
    preset, _, data_path, _, _ = setup
    t = preset.tokenizer
    clean = TokenData(data_path, t.tokens_per_latent_frame(), 0.0)
    noisy = TokenData(data_path, t.tokens_per_latent_frame(), 0.0, context_noise=0.5, vocab=2**t.bits)
    changed = []
    for i in range(6):
        a_seq, a_out = clean.batch("continue", 8, np.random.default_rng(i), "cpu")
        b_seq, b_out = noisy.batch("continue", 8, np.random.default_rng(i), "cpu")
        assert torch.equal(a_out, b_out) and a_seq.n_in == b_seq.n_in
        sl = slice(a_seq.in_start, a_seq.in_start + a_seq.n_in)
        changed.append((a_seq.tokens[:, sl] != b_seq.tokens[:, sl]).float().mean().item())
        assert torch.equal(a_seq.tokens[:, : a_seq.in_start], b_seq.tokens[:, : b_seq.in_start])
    assert 0.05 < np.mean(changed) < 0.3, changed  # rate ~ U(0, 0.5) per sample; a random id can repeat the old one
    for task in ("t2v", "i2v", "stylize"):
        a_seq, _ = clean.batch(task, 4, np.random.default_rng(9), "cpu")
        b_seq, _ = noisy.batch(task, 4, np.random.default_rng(9), "cpu")
        assert torch.equal(a_seq.tokens, b_seq.tokens)
    with pytest.raises(ValueError, match="vocabulary"):
        TokenData(data_path, t.tokens_per_latent_frame(), 0.0, context_noise=0.1)


def test_muon_orthogonalizes_matrices_and_convolution_weights():
    """Newton-Schulz leaves every singular value near 1 (the quintic's band, about 0.7-1.2) whatever the
    input's spread, for a tall, a wide and a convolution-shaped (out, in, k, k) weight; vectors are refused."""
    from model.train.muon import Muon, orthogonalize

    g = torch.Generator().manual_seed(0)
    for shape in ((64, 16), (16, 64)):
        u, _, vt = torch.linalg.svd(torch.randn(*shape, generator=g), full_matrices=False)
        m = u @ torch.diag(torch.logspace(-1, 1, 16)) @ vt  # singular values 0.1 .. 10
        s = torch.linalg.svdvals(orthogonalize(m))
        assert s.min() > 0.6 and s.max() < 1.25, s
    conv = torch.nn.Parameter(torch.zeros(8, 4, 3, 3))
    conv.grad = torch.randn(8, 4, 3, 3, generator=g)
    opt = Muon([conv], lr=0.1, momentum=0.0)
    opt.step()
    s = torch.linalg.svdvals(conv.detach().reshape(8, -1)) / (0.1 * 0.2 * 36**0.5)
    assert s.min() > 0.6 and s.max() < 1.25, s
    with pytest.raises(ValueError, match="weight matrices"):
        Muon([torch.nn.Parameter(torch.zeros(4))], lr=0.1)
