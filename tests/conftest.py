"""Fixtures shared by the command-line tests: model checkpoints built once per session, a scratch cwd."""

import re

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)  # a training job shares the CPU: one thread is faster than two fighting
    yield


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def tiny_ckpt(ckpt_dir):
    from model.pipeline import VideoPoet

    path = ckpt_dir / "tiny-random.safetensors"
    VideoPoet.random("tiny", seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def micro(ckpt_dir):
    """(preset YAML, checkpoint) of a much smaller shape than tiny: fast mechanics tests."""
    from model.config import load_preset, presets_dir
    from model.pipeline import VideoPoet

    text = (presets_dir() / "tiny.yaml").read_text()
    for pattern, repl in [
        (r"(?m)^name: .*$", "name: micro"),
        (r"(?m)^weights: .*$", "weights: null"),
        (r"(?m)^(\s+)channels: .*$", r"\1channels: [8, 16]"),
        (r"(?m)^(\s+)bits: .*$", r"\1bits: 6"),
        (r"(?m)^(\s+)dim: .*$", r"\1dim: 32"),
        (r"(?m)^(\s+)n_layers: .*$", r"\1n_layers: 1"),
        (r"(?m)^(\s+)n_heads: .*$", r"\1n_heads: 2"),
        (r"(?m)^(\s+)mlp_hidden: .*$", r"\1mlp_hidden: 64"),
        (r"(?m)^(\s+)temperature: .*$", r"\1temperature: 1.0"),  # mechanics tests keep their draws when tiny's sampling is tuned
        (r"(?m)^(\s+)guidance: .*$", r"\1guidance: 3.0"),
        (r"(?m)^(\s+)reference: .*$", r"\1reference: false"),  # and their random weights when tiny's decoder gains modules
    ]:
        text, n = re.subn(pattern, repl, text)
        assert n == 1, pattern
    yaml_path = ckpt_dir / "micro.yaml"
    yaml_path.write_text(text)
    preset = load_preset(str(yaml_path))
    assert (preset.name, preset.tokenizer.bits, preset.lm.dim, preset.weights) == ("micro", 6, 32, None)
    ckpt = ckpt_dir / "micro.safetensors"
    VideoPoet.random(preset, seed=0).save(ckpt)
    return yaml_path, ckpt


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
