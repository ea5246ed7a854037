"""Fuzzing the command line (hypothesis) and running it with the network cut off.

Whatever the prompt, option values or preset file, a command ends in one of two ways: exit 0 with a
valid output file, or a non-zero exit with one `error:` line and no output file. Never a traceback.
"""

import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import M, cli, read_back

FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _check(result, out):
    assert not isinstance(result.exception, BaseException) or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        frames, _ = read_back(out)
        assert frames.ndim == 4 and frames.shape[0] >= 1
    else:
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert "internal error" not in errors[0], errors[0]
        assert not os.path.exists(out)


def _fresh(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    return d / "out.gif"


prompts = st.one_of(
    st.text(min_size=0, max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=40),  # control characters
    st.text(alphabet=st.sampled_from("🎉🔴⬛️ 赤い円 دائرة حمراء"), max_size=50),
    st.builds(lambda n: "a red circle moving right " * n, st.integers(1, 4000)),  # up to 100k characters
)


@FUZZ
@given(prompt=prompts)
def test_any_prompt(micro, tmp_path_factory, prompt):
    out = _fresh(tmp_path_factory)
    if "\x00" in prompt:
        return  # an argv can never hold NUL (the OS refuses it before videopoet runs)
    _check(cli("generate", prompt, *M(micro), "--frames", "1", "-o", out, "-q"), out)


numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "x", "1e999", "-0", "0x10"]))


@FUZZ
@given(option=st.sampled_from(["--seed", "--temperature", "--top-k", "--top-p", "--cfg", "--frames", "--fps", "--size", "--seconds", "--num"]),
       value=numbers)  # fmt: skip
def test_any_numeric_option(micro, tmp_path_factory, option, value):
    out = _fresh(tmp_path_factory)
    args = ["generate", "a red circle", *M(micro), "-o", out, "-q", option, str(value)]
    if option not in ("--frames", "--seconds"):
        args += ["--frames", "1"]
    if option == "--num":
        return _check_num(micro, tmp_path_factory, value)
    r = cli(*args)
    _check(r, out)


def _check_num(micro, tmp_path_factory, value):
    d = tmp_path_factory.mktemp("num")
    r = cli("generate", "a red circle", *M(micro), "-o", d / "o.gif", "-q", "--frames", "1", "--num", str(value))
    assert "Traceback" not in r.stderr
    if r.exit_code != 0:
        assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) == 1
        assert list(d.iterdir()) == []


values = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=20),
                   st.lists(st.integers(-5, 300), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))  # fmt: skip
keys = st.sampled_from(["tokenizer.frames", "tokenizer.height", "tokenizer.bits", "tokenizer.channels", "tokenizer.pad",
                        "lm.dim", "lm.n_heads", "lm.rope", "lm.max_text_tokens", "sampling.guidance", "sampling.top_k",
                        "sampling.temperature", "sampling.decoding", "sampling.negative", "video.fps", "video.display_size",
                        "weights", "name", "bogus.key", "lm.bogus"])  # fmt: skip


@FUZZ
@given(key=keys, value=values)
def test_any_preset_value(micro, tmp_path_factory, key, value):
    import yaml

    d = tmp_path_factory.mktemp("preset")
    data = yaml.safe_load(open(micro[0]).read())
    section, _, name = key.partition(".")
    if name:
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data[section][name] = value
    else:
        data[section] = value
    path = d / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    out = d / "out.gif"
    r = cli("generate", "a red circle", "--preset", path, "--checkpoint", micro[1], "--frames", "1", "-o", out, "-q")
    _check(r, out)


@pytest.mark.parametrize("text", ["a: [1, 2", "!!python/object:os.system ls", "tokenizer: !!binary AAAA", "- 1\n- 2", "\x00\x01"])
def test_malformed_preset_files(micro, tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "o.gif"
    _check(cli("generate", "a red circle", "--preset", path, "--checkpoint", micro[1], "--frames", "1", "-o", out, "-q"), out)


# ----------------------------------------------------------------------------- no network


def test_no_network_at_run_time(monkeypatch, tmp_path):
    """The shipped weights and the text encoder load with every socket refused and no offline flag."""

    def refuse(*a, **k):
        raise OSError("network access attempted during a videopoet run")

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from model import text

    text.shared_text_encoder.cache_clear()  # load the encoder again, under the guard
    out = tmp_path / "o.gif"
    r = cli("generate", "a red circle moving right", "--frames", "1", "-o", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert read_back(out)[0].shape[0] == 1
    with pytest.raises(OSError, match="network access"):
        socket.create_connection(("example.com", 80))  # the guard was live
