"""The core's crisp properties: causal tokenizer, LFQ ids, prefix mask, KV cache, CFG, seeds, checkpoints, presets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from model import tasks
from model.checkpoint import CheckpointError, read_checkpoint
from model.config import LMConfig, SamplingOptions, TokenizerConfig, load_preset, preset_from_dict
from model.errors import InvalidInput
from model.lfq import LFQ, bits_to_ids, ids_to_bits
from model.pipeline import VideoPoet
from model.sampling import filter_logits, guided, sample, sample_uncached
from model.tokenizer import VideoTokenizer
from model.transformer import PrefixLM, prefix_lm_mask

torch.set_num_threads(1)
SMALL_TOK = TokenizerConfig(frames=17, height=32, width=32, channels=[8, 16], res_blocks=1, bits=6)
SMALL_LM = LMConfig(dim=32, n_layers=2, n_heads=2, mlp_hidden=64, max_text_tokens=5)


def small_preset(**over):
    d = {"name": "micro", "tokenizer": dataclasses.asdict(SMALL_TOK), "lm": dataclasses.asdict(SMALL_LM)}
    d.update(over)
    return preset_from_dict(d, "<test>")


# -- tokenizer ---------------------------------------------------------------------------------------
def test_tokenizer_shapes_and_image_is_one_frame_video():
    torch.manual_seed(0)
    tok = VideoTokenizer(SMALL_TOK).eval()
    video = torch.rand(2, 17, 3, 32, 32) * 2 - 1
    ids = tok.encode(video)
    assert ids.shape == (2, 5, 4, 4) and ids.dtype == torch.int64
    assert int(ids.min()) >= 0 and int(ids.max()) < 2**6
    assert tok.decode(ids).shape == (2, 17, 3, 32, 32)
    image_ids = tok.encode(video[:, :1])
    assert image_ids.shape == (2, 1, 4, 4)
    assert torch.equal(image_ids[:, 0], ids[:, 0])  # frame 0 is encoded alone
    assert tok.decode(image_ids).shape == (2, 1, 3, 32, 32)


@pytest.mark.parametrize("k", [1, 4, 5, 9, 13, 16])
def test_tokenizer_is_causal(k):
    """Changing frame k never changes the ids of latent frames that end before it."""
    torch.manual_seed(1)
    tok = VideoTokenizer(SMALL_TOK).eval()
    with torch.no_grad():  # make the latents sensitive so a leak would show up
        for p in tok.encoder.parameters():
            p.mul_(3.0)
    video = torch.rand(1, 17, 3, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, k:] = torch.rand_like(changed[:, k:]) * 2 - 1
    a, b = tok.encode_latents(video), tok.encode_latents(changed)
    first_affected = (k + 3) // 4  # latent j covers frames 4j-3 .. 4j (j >= 1); latent 0 is frame 0
    assert torch.equal(a[:, :, :first_affected], b[:, :, :first_affected])
    assert not torch.allclose(a[:, :, first_affected], b[:, :, first_affected])
    # and the decoder is causal too
    ida, idb = tok.encode(video), tok.encode(changed)
    da, db = tok.decode(ida), tok.decode(idb)
    last_safe = 1 + 4 * (first_affected - 1)
    assert torch.equal(da[:, :last_safe], db[:, :last_safe])


def test_tokenizer_rejects_bad_frame_count():
    tok = VideoTokenizer(SMALL_TOK)
    with pytest.raises(ValueError):
        tok.encode(torch.zeros(1, 6, 3, 32, 32))


# -- LFQ -----------------------------------------------------------------------------------------------
def test_lfq_ids_bits_round_trip():
    ids = torch.arange(2**10)
    bits = ids_to_bits(ids, 10)
    assert set(bits.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(bits_to_ids(bits), ids)
    assert bits_to_ids(torch.tensor([[1.0, -1.0, -1.0]])).item() == 4  # most significant bit first


def test_lfq_quantizes_to_signs_with_straight_through_grad():
    q = LFQ(4).train()
    z = torch.randn(2, 4, 3, 2, 2, requires_grad=True)
    zq, ids, aux, stats = q(z)
    assert torch.equal(zq.detach(), torch.where(z > 0, 1.0, -1.0))
    assert torch.equal(ids, bits_to_ids(z.detach().movedim(1, -1)))
    zq.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))  # straight through
    assert torch.isfinite(aux) and "ent_batch" in stats


@pytest.mark.parametrize("bits", [1, 5, 12])
def test_lfq_batch_entropy_is_exact_over_every_code(bits):
    """The batch-mean code distribution is taken as an outer product of two halves of the bits; it must
    equal the distribution summed code by code over all 2**bits codes, in value and in gradient."""
    torch.manual_seed(bits)
    q = LFQ(bits)
    z = (torch.randn(300, bits) * 0.3).double().requires_grad_()
    z.data[:100] *= 10  # confident samples too (probabilities underflow for most codes)
    _, ent_batch = q._entropies(z)

    z_ref = z.detach().clone().requires_grad_()
    codes = ids_to_bits(torch.arange(2**bits), bits).double()  # (K, n), MSB first
    p1 = torch.sigmoid(4 * z_ref / q.temperature)
    probs = torch.where(codes[None] > 0, p1[:, None], 1 - p1[:, None]).prod(-1)  # (N, K)
    avg = probs.mean(0)
    ref = -(avg * (avg + 1e-6).log()).sum()
    assert torch.allclose(q._batch_code_distribution(z), avg, rtol=1e-9, atol=1e-15)  # code by code, in id order
    assert torch.allclose(ent_batch, ref, rtol=1e-9, atol=1e-12)
    ent_batch.backward()
    ref.backward()
    assert torch.allclose(z.grad, z_ref.grad, rtol=1e-7, atol=1e-12)


# -- prefix LM -----------------------------------------------------------------------------------------
def test_prefix_mask_bidirectional_prefix_causal_output():
    valid = torch.ones(1, 6, dtype=torch.bool)
    valid[0, 1] = False  # a padded text position
    m = prefix_lm_mask(valid, prefix_len=3)[0, 0]
    expected = torch.tensor(
        [
            [1, 0, 1, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [1, 0, 1, 1, 0, 0],
            [1, 0, 1, 1, 1, 0],
            [1, 0, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(m, expected)


def _seq(task="i2v", B=2, n_out=7, lt=5, seed=0, vocab=64):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(B, lt, 384, generator=g)
    valid = torch.ones(B, lt, dtype=torch.bool)
    valid[-1, 3:] = False
    pooled = torch.randn(B, 384, generator=g)
    vin = torch.randint(0, vocab, (B, 6), generator=g) if task in ("i2v", "continue", "stylize", "motion") else None
    return tasks.build(task, states, valid, pooled, n_out, visual_in=vin)


def _lm(vocab=64, seed=0):
    torch.manual_seed(seed)
    return PrefixLM(SMALL_LM, vocab, (8, 8)).eval()


def test_output_never_sees_its_future_and_prefix_is_bidirectional():
    lm = _lm()
    seq = _seq()
    out = torch.randint(0, 64, (2, 7))
    full = tasks.build("i2v", seq.text_states, seq.text_valid, seq.text_pooled, 7, visual_in=seq.tokens[:, 4 + 5 + 2 : 4 + 5 + 2 + 6] - tasks.N_SPECIAL, visual_out=out)
    base = lm(full)
    changed_out = out.clone()
    changed_out[:, 4] = (changed_out[:, 4] + 1) % 64
    alt = lm(tasks.build("i2v", full.text_states, full.text_valid, full.text_pooled, 7,
                         visual_in=full.tokens[:, 11:17] - tasks.N_SPECIAL, visual_out=changed_out))  # fmt: skip
    # logits at output positions 0..4 predict ids 0..4 and may only see ids < their index
    assert torch.allclose(base[:, :5], alt[:, :5], atol=1e-6)
    assert not torch.allclose(base[:, 5:], alt[:, 5:], atol=1e-6)
    # the last visual-in token influences every output position (prefix tokens see each other too)
    vin = full.tokens[:, 11:17] - tasks.N_SPECIAL
    vin2 = vin.clone()
    vin2[:, -1] = (vin2[:, -1] + 1) % 64
    alt2 = lm(tasks.build("i2v", full.text_states, full.text_valid, full.text_pooled, 7, visual_in=vin2, visual_out=out))
    assert not torch.allclose(base[:, 0], alt2[:, 0], atol=1e-6)


def test_padded_text_is_ignored():
    lm = _lm()
    seq = _seq()
    states2 = seq.text_states.clone()
    states2[-1, 3:] = 100.0  # padding positions of sample 1: must not matter
    a = lm(dataclasses.replace(seq, tokens=torch.cat([seq.tokens, torch.randint(16, 80, (2, 6))], 1)))
    b = lm(dataclasses.replace(seq, text_states=states2, tokens=torch.cat([seq.tokens, torch.randint(16, 80, (2, 6))], 1)))
    assert torch.allclose(a[-1, 0], b[-1, 0], atol=1e-6)


@pytest.mark.parametrize("task", ["t2v", "i2v", "stylize"])
def test_kv_cache_equals_full_recompute(task):
    lm = _lm()
    seq = _seq(task)
    out = sample(lm, seq, SamplingOptions(guidance=1.0), generator=torch.Generator().manual_seed(3))
    full = lm(dataclasses.replace(seq, tokens=torch.cat([seq.tokens, tasks.visual_token(out)], 1)))
    cache = lm.new_cache(2, seq.prefix_len + seq.n_out, "cpu")
    logits = [lm.prefill(seq, cache)]
    for i in range(seq.n_out - 1):
        logits.append(lm.decode_step(out[:, i], seq.prefix_len + 1 + i, cache))
    assert torch.allclose(torch.stack(logits, 1), full, atol=1e-5)
    for cfg in (1.0, 2.5):
        a = sample(lm, seq, SamplingOptions(guidance=cfg, top_k=20, top_p=0.9), generator=torch.Generator().manual_seed(5))
        b = sample_uncached(lm, seq, SamplingOptions(guidance=cfg, top_k=20, top_p=0.9), generator=torch.Generator().manual_seed(5))
        assert torch.equal(a, b)


def test_cache_takes_the_weights_as_they_are_when_made():
    """The cached passes read copies of the projections ((w, w_t) pairs) made by new_cache: a cache made after the
    weights change gives the changed model's logits (no stale copy kept on the module), and one made
    before keeps the weights it was made with."""
    lm = _lm()
    seq = _seq("t2v")
    S = seq.prefix_len + seq.n_out
    old = lm.new_cache(2, S, "cpu")
    before = lm.prefill(seq, lm.new_cache(2, S, "cpu"))
    with torch.no_grad():
        for p in lm.parameters():
            p.add_(0.05 * torch.randn_like(p))  # an optimizer step, in place
    after = lm.prefill(seq, lm.new_cache(2, S, "cpu"))
    full = lm(dataclasses.replace(seq, tokens=torch.cat([seq.tokens, tasks.visual_token(torch.zeros(2, seq.n_out, dtype=torch.long))], 1)))
    assert torch.allclose(after, full[:, 0], atol=1e-5)
    assert not torch.allclose(after, before, atol=1e-3)
    (w, w_t), head = old.weights[0][0], old.head
    assert not torch.equal(w, lm.blocks[0].attn.qkv.weight) and torch.equal(w, w_t.t())
    assert w_t.is_contiguous() and head[1].is_contiguous() and w_t.shape[0] == head[1].shape[0] == lm.cfg.dim


@pytest.mark.parametrize("shape", [(1, 24), (2, 24), (1, 1, 24), (1, 8, 24), (2, 8, 24), (3, 3, 24), (1, 17, 24), (40, 24)])
def test_project_is_f_linear_whatever_kernel_it_picks(shape):
    """project() picks a matrix-product kernel by the number of rows (1, up to SMALL_ROWS, more); every
    choice is x @ w^T up to float rounding, contiguous, in the input's shape."""
    from model.transformer import project

    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(40, 24, generator=g), torch.randn(*shape, generator=g)
    ref = torch.nn.functional.linear(x, w)
    for out in (project(x, w, w.t().contiguous()), project(x, w)):
        assert out.shape == ref.shape and out.is_contiguous() and torch.allclose(out, ref, atol=1e-5)


def test_cfg_scale_one_equals_conditional():
    lm = _lm()
    seq = _seq("t2v")
    d = seq.doubled()
    cache = lm.new_cache(d.batch, seq.prefix_len + seq.n_out, "cpu")
    logits = lm.prefill(d, cache)
    assert torch.allclose(guided(logits, seq.batch, 1.0), logits[: seq.batch], atol=1e-6)
    assert not torch.allclose(logits[: seq.batch], logits[seq.batch :])  # the text matters
    cache1 = lm.new_cache(seq.batch, seq.prefix_len + seq.n_out, "cpu")
    assert torch.allclose(lm.prefill(seq, cache1), logits[: seq.batch], atol=1e-5)


def test_sampling_options_are_one_frozen_validated_object():
    """Defaulted and validated in one place; the old name `cfg` still reads as guidance (preset key and
    Python keyword); an unknown option is a TypeError, not silently ignored."""
    o = SamplingOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.guidance = 2.0  # type: ignore[misc]
    for bad in (dict(temperature=0.0), dict(temperature=float("nan")), dict(top_k=-1), dict(top_p=0.0),
                dict(guidance=float("inf")), dict(decoding="beam")):  # fmt: skip
        with pytest.raises(InvalidInput, match=f"sampling.{next(iter(bad))} must"):
            SamplingOptions(**bad)
    assert o.with_changes(cfg=1.5, top_k=None) == SamplingOptions(guidance=1.5)
    assert o.with_changes() is o
    with pytest.raises(TypeError, match="unknown sampling option 'topk'"):
        o.with_changes(topk=3)
    d = load_preset("tiny").to_dict()
    d["sampling"].pop("guidance")
    d["sampling"]["cfg"] = 2.5
    assert preset_from_dict(d).sampling.guidance == 2.5
    assert "cfg" not in o.sampler_view() and o.sampler_view()["guidance"] == 3.0


def test_edit_guidance_is_for_inpaint_and_outpaint_until_a_guidance_is_named():
    """The preset's edit_guidance replaces guidance for the masked-editing tasks only; a guidance the caller
    names (a flag, a keyword) holds for every task, so it clears edit_guidance."""
    o = SamplingOptions(guidance=2.0, edit_guidance=3.0)
    assert o.for_editing() == SamplingOptions(guidance=3.0)
    assert SamplingOptions(guidance=2.0).for_editing() == SamplingOptions(guidance=2.0)
    assert o.with_changes(guidance=1.5).for_editing().guidance == 1.5
    assert o.with_changes(temperature=0.5).for_editing().guidance == 3.0
    assert o.with_changes(guidance=1.5, edit_guidance=4.0).for_editing().guidance == 4.0
    with pytest.raises(InvalidInput, match="sampling.edit_guidance must be >= 0"):
        SamplingOptions(edit_guidance=-1.0)
    tiny = load_preset("tiny").sampling
    assert tiny.guidance != tiny.edit_guidance is not None  # the shipped preset sets both (README model card)


def test_forced_outputs_are_kept():
    lm = _lm()
    seq = _seq("t2v")
    forced = torch.randint(0, 64, (2, 3))
    s2 = dataclasses.replace(seq, tokens=torch.cat([seq.tokens, tasks.visual_token(forced)], 1))
    out = sample(lm, s2, SamplingOptions(guidance=1.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :3], forced) and out.shape == (2, 7)


def test_filter_logits():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, 1.0, 2, 1.0)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, 1.0, 0, 0.7)[0])
    assert kept.tolist() == [True, True, False, False]
    assert not torch.isinf(filter_logits(logits, 1.0, 0, 1.0)).any()


# -- facade: seeds, checkpoints ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> tuple[VideoPoet, Path]:
    vp = VideoPoet(small_preset(), VideoTokenizer(SMALL_TOK), PrefixLM.for_tokenizer(SMALL_LM, SMALL_TOK))
    path = tmp_path_factory.mktemp("ckpt") / "micro.safetensors"
    vp.save(path)
    return vp, path


def test_one_seed_one_video(micro):
    vp, path = micro
    loaded = VideoPoet.from_pretrained(str(path))
    a = loaded.generate("a red circle moving right", seed=7)
    b = loaded.generate("a red circle moving right", seed=7)
    c = loaded.generate("a red circle moving right", seed=8)
    assert a.shape == (17, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_checkpoint_round_trip(micro):
    vp, path = micro
    loaded = VideoPoet.from_pretrained(str(path))
    for k, v in vp.lm.state_dict().items():
        assert torch.equal(v, loaded.lm.state_dict()[k]), k
    _, meta = read_checkpoint(path)
    assert meta["format"] == "videopoet" and meta["format_version"] == "1"


def test_checkpoint_config_mismatch_names_key(micro, tmp_path):
    _, path = micro
    yaml_path = tmp_path / "other.yaml"
    import yaml

    d = small_preset().to_dict()
    d["lm"]["n_layers"] = 3
    yaml_path.write_text(yaml.safe_dump(d))
    with pytest.raises(CheckpointError, match="lm.n_layers"):
        VideoPoet.from_pretrained(str(yaml_path), checkpoint=path)


def test_checkpoint_tensor_shape_mismatch_names_tensor(micro, tmp_path):
    from safetensors.torch import load_file, save_file

    _, path = micro
    _, meta = read_checkpoint(path)
    t = load_file(str(path))
    t["lm.head.weight"] = torch.zeros(3, 3)
    bad = tmp_path / "bad.safetensors"
    save_file(t, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="lm.head.weight"):
        VideoPoet.from_pretrained(str(bad))
    del t["lm.head.weight"]
    save_file(t, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="missing"):
        VideoPoet.from_pretrained(str(bad))


def test_pickle_is_never_loaded(tmp_path):
    p = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(p)
    p2 = tmp_path / "junk.safetensors"
    p2.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        read_checkpoint(p2)


# -- presets ---------------------------------------------------------------------------------------------
def test_shipped_presets_load():
    tiny, paper = load_preset("tiny"), load_preset("paper")
    assert tiny.tokenizer.latent_shape() == (5, 8, 8)
    assert paper.tokenizer.latent_shape() == (5, 16, 16) and paper.tokenizer.vocab_size == 2**18
    d, h, L, V = paper.lm.dim, paper.lm.mlp_hidden, paper.lm.n_layers, 2**18  # too big to build here: count
    params = L * (4 * d * d + 3 * d * h) + 2 * (V + tasks.N_SPECIAL) * d
    assert 1.0e9 <= params <= 2.5e9


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"colour": 1}, "unknown key 'colour'"),
        ({"lm": {"dimm": 3}}, "unknown key 'lm.dimm'"),
        ({"lm": {"dim": "big"}}, "lm.dim must be an integer"),
        ({"tokenizer": {"frames": 16}}, "tokenizer.frames=16"),
        ({"tokenizer": {"height": 60}}, "not divisible"),
        ({"sampling": {"top_p": 1.5}}, "top_p"),
        ({"sampling": {"guidance": -1}}, "sampling.guidance must be >= 0"),
        ({"sampling": {"cfg": 2.0, "guidance": 3.0}}, "another name for 'sampling.guidance'"),
        ({"lm": {"dim": 30, "n_heads": 4}}, "n_heads"),
    ],
)
def test_preset_validation_names_key_and_file(tmp_path, patch, match):
    import yaml

    d = load_preset("tiny").to_dict()
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k].update(v)
        else:
            d[k] = v
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(InvalidInput, match=match) as e:
        load_preset(str(f))
    assert str(f) in str(e.value)


def test_unknown_preset():
    with pytest.raises(InvalidInput, match="unknown preset 'nope'"):
        load_preset("nope")


@pytest.mark.parametrize("cfg, forced", [(1.0, 0), (2.5, 0), (2.5, 3)])
def test_jacobi_decoding_gives_the_sequential_tokens(cfg, forced):
    from model.sampling import sample_jacobi

    lm = _lm()
    seq = _seq("t2v", n_out=40)
    if forced:
        seq = dataclasses.replace(seq, tokens=torch.cat([seq.tokens, tasks.visual_token(torch.randint(0, 64, (2, forced)))], 1))
    for s in range(3):
        a = sample(lm, seq, SamplingOptions(guidance=cfg, top_k=30), generator=torch.Generator().manual_seed(s))
        b = sample_jacobi(lm, seq, SamplingOptions(guidance=cfg, top_k=30), generator=torch.Generator().manual_seed(s), block=6)
        assert torch.equal(a, b)
        assert sample_jacobi.calls < 40 - forced + 1  # never more calls than sequential (prefill + n - 1)
