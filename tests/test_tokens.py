"""Ids mean content, not place (by construction, on random weights), 3-D rotary positions, checkpoints
written before these changes, and the reference decoder (by construction)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from model import tasks
from model.checkpoint import CheckpointError, atomic_save, read_checkpoint
from model.config import LMConfig, SamplingOptions, TokenizerConfig, load_preset
from model.diagnostics import token_properties
from model.pipeline import VideoPoet
from model.sampling import sample, sample_uncached
from model.tokenizer import VideoTokenizer, align_reference
from model.transformer import PrefixLM, positions_3d

torch.set_num_threads(1)
TOK = TokenizerConfig(frames=9, height=32, width=32, channels=[8, 16], res_blocks=1, bits=8)


def _sensitive(cfg: TokenizerConfig, seed: int = 0) -> VideoTokenizer:
    """Random weights scaled up, so any dependence on place or time would flip ids."""
    torch.manual_seed(seed)
    tok = VideoTokenizer(cfg).eval()
    with torch.no_grad():
        for p in tok.encoder.parameters():
            p.mul_(3.0)
        for m in tok.modules():  # biases make a constant input's features non-zero, so signs are decided
            if isinstance(m, torch.nn.Conv3d):
                m.bias.uniform_(-0.5, 0.5)
    return tok


@pytest.mark.parametrize("seed", [0, 1])
def test_constant_clip_is_one_id_everywhere_and_in_every_latent_frame(seed):
    tok = _sensitive(TOK, seed)
    for level in (-0.8, 0.1, 0.7):
        video = torch.full((1, 9, 3, 32, 32), level)
        video[:, :, 1] = -level / 2
        ids = tok.encode(video)
        assert ids.unique().numel() == 1


def test_zero_padding_leaks_position_which_is_why_it_is_not_the_default():
    tok = _sensitive(dataclasses.replace(TOK, pad="zeros"))
    ids = tok.encode(torch.full((1, 9, 3, 32, 32), 0.3))
    assert ids.unique().numel() > 1  # the check above can fail: it would catch a return of zero padding


def test_still_clip_gives_the_same_ids_in_every_latent_frame():
    tok = _sensitive(TOK)
    frame = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    ids = tok.encode(frame.expand(2, 9, 3, 32, 32))
    assert all(torch.equal(ids[:, j], ids[:, 0]) for j in range(1, ids.shape[1]))


def test_ids_move_with_the_scene():
    """A scene shifted by exactly one latent cell gives the same ids shifted by one cell, wherever the
    cell's receptive field stays off the border (a wide frame, an object in the middle)."""
    tok = _sensitive(dataclasses.replace(TOK, width=256))
    s = TOK.spatial_stride
    scene = torch.full((1, 9, 3, 32, 256 + s), -0.6)
    scene[..., 8:24, 120:150] = torch.rand(1, 9, 3, 16, 30) * 2 - 1
    a, b = tok.encode(scene[..., :256]), tok.encode(scene[..., s : s + 256])
    assert torch.equal(a[..., 1:], b[..., :-1])


def test_token_properties_report_on_random_weights():
    props = token_properties(_sensitive(dataclasses.replace(TOK, frames=17, height=64, width=64)), n=2)
    assert props["constant_max_ids"] == 1 and props["constant_same_every_latent_frame"]
    assert props["still_same_as_previous_latent_frame"] == 1.0
    assert 0.0 <= props["one_cell_shift_moves_ids"] <= 1.0


# -- rotary positions --------------------------------------------------------------------------------
LM = LMConfig(dim=32, n_layers=2, n_heads=2, mlp_hidden=64, max_text_tokens=5)


def _seq(task, n_in=8, n_out=8, B=2):
    g = torch.Generator().manual_seed(0)
    states, pooled = torch.randn(B, 5, 384, generator=g), torch.randn(B, 384, generator=g)
    vin = torch.randint(0, 64, (B, n_in), generator=g) if task in ("i2v", "continue", "stylize", "motion") else None
    return tasks.build(task, states, torch.ones(B, 5, dtype=torch.bool), pooled, n_out, visual_in=vin)


def test_3d_positions_align_cells_across_segments():
    grid = (2, 2)  # 4 ids per latent frame
    st = _seq("stylize", n_in=8, n_out=8)
    pos = positions_3d(st, st.prefix_len + 1 + st.n_out, grid)
    vin = pos[st.in_start : st.in_start + 8]
    vout = pos[st.prefix_len + 1 : st.prefix_len + 9]
    assert torch.equal(vin, vout)  # the control's cell and the output's cell: offset 0
    assert torch.equal(vout[4] - vout[0], torch.tensor([1, 0, 0]))  # next latent frame: +1 in time
    assert torch.equal(vout[1] - vout[0], torch.tensor([0, 0, 1])) and torch.equal(vout[2] - vout[0], torch.tensor([0, 1, 0]))
    i2v = _seq("i2v", n_in=4, n_out=8)
    pos = positions_3d(i2v, i2v.prefix_len + 1 + i2v.n_out, grid)
    first_in, first_out = pos[i2v.in_start], pos[i2v.prefix_len + 1]
    assert torch.equal(first_out - first_in, torch.tensor([1, 0, 0]))  # the output continues the image in time
    text = pos[: i2v.in_start - 1]
    assert torch.equal(text[:, 0], torch.arange(len(text))) and torch.equal(text[:, 0], text[:, 2])


@pytest.mark.parametrize("rope", ["1d", "3d"])
@pytest.mark.parametrize("task", ["t2v", "continue", "motion"])
def test_kv_cache_equals_full_recompute_for_both_position_schemes(rope, task):
    torch.manual_seed(0)
    lm = PrefixLM(dataclasses.replace(LM, rope=rope), 64, (2, 2)).eval()
    seq = _seq(task)
    a = sample(lm, seq, SamplingOptions(guidance=2.0), generator=torch.Generator().manual_seed(5))
    b = sample_uncached(lm, seq, SamplingOptions(guidance=2.0), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_position_schemes_differ():
    torch.manual_seed(0)
    one = PrefixLM(dataclasses.replace(LM, rope="1d"), 64, (2, 2)).eval()
    three = PrefixLM(dataclasses.replace(LM, rope="3d"), 64, (2, 2)).eval()
    three.load_state_dict(one.state_dict())
    seq = _seq("t2v")
    seq = dataclasses.replace(seq, tokens=torch.cat([seq.tokens, torch.randint(16, 80, (2, 8))], 1))
    assert not torch.allclose(one(seq), three(seq))


# -- checkpoints from before pad/rope existed ------------------------------------------------------------
def _legacy_checkpoint(tmp_path):
    preset = load_preset("tiny")
    preset.tokenizer = dataclasses.replace(preset.tokenizer, channels=[8, 16], res_blocks=1, pad="zeros", entropy_weight=0.1)
    preset.lm = dataclasses.replace(preset.lm, dim=32, n_layers=1, n_heads=2, mlp_hidden=64, rope="1d")
    vp = VideoPoet(preset, VideoTokenizer(preset.tokenizer), PrefixLM.for_tokenizer(preset.lm, preset.tokenizer))
    path = tmp_path / "new.safetensors"
    vp.save(path)
    tensors, meta = read_checkpoint(path)
    config = json.loads(meta["config"])
    del config["tokenizer"]["pad"], config["lm"]["rope"]  # as the first checkpoints were written
    old = tmp_path / "old.safetensors"
    atomic_save(tensors, old, {**meta, "config": json.dumps(config)})
    return old


def test_checkpoint_without_the_new_keys_loads_as_the_old_behaviour(tmp_path):
    vp = VideoPoet.from_pretrained(str(_legacy_checkpoint(tmp_path)))
    assert vp.preset.tokenizer.pad == "zeros" and vp.preset.lm.rope == "1d"
    assert vp.tokenizer.encode(torch.full((1, 17, 3, 64, 64), 0.2)).shape == (1, 5, 8, 8)


def test_old_checkpoint_against_the_new_preset_says_why(tmp_path):
    old = _legacy_checkpoint(tmp_path)
    config = json.loads(read_checkpoint(old)[1]["config"])
    config["lm"].pop("rope", None)
    config["tokenizer"].update(pad="replicate", entropy_weight=0.01)
    (tmp_path / "new.yaml").write_text(json.dumps({"name": "new", **config}))  # JSON is YAML
    with pytest.raises(CheckpointError, match=r"'lm.rope'.*'3d'.*'1d'.*before"):
        VideoPoet.from_pretrained(str(tmp_path / "new.yaml"), old)


# -- decoding with a reference frame (model.tokenizer.align_reference, ReferenceBlend) -------------------
def _scene(cx: int, cy: int, n: int = 1, r: int = 5) -> torch.Tensor:
    """(n, 3, 32, 32): a bright disc of radius r at (cx, cy) on dark grey, moving 1 px right per frame."""
    ys, xs = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    out = torch.full((n, 3, 32, 32), -0.6)
    for t in range(n):
        disc = (xs - cx - t) ** 2 + (ys - cy) ** 2 <= r * r
        out[t, 0][disc], out[t, 1][disc] = 0.9, -0.9
    return out


def test_align_reference_moves_the_reference_to_where_each_frame_has_its_object():
    video = _scene(12, 20, n=5)[None]  # the object at x = 12..16, y = 20
    reference = _scene(20, 9)  # the same object elsewhere
    aligned = align_reference(reference, video)
    assert aligned.shape == video.shape
    assert torch.equal(aligned, video)


def test_align_reference_follows_motion_between_whole_pixels():
    """An object moving half a pixel per frame: whole-pixel shifts could only step it 0, 1, 0, 1 px (a
    jerk at every seam of an extended clip); the quarter-pixel fit puts it where it is."""
    from model.tokenizer import _shift

    reference = _scene(12, 20)
    video = torch.stack([_shift(reference[0], 0.0, 0.5 * t) for t in range(5)])[None]
    sub = align_reference(reference, video)
    whole = align_reference(reference, video, subpixel=False)
    err_sub = (sub - video).abs().mean((2, 3, 4))[0]
    err_whole = (whole - video).abs().mean((2, 3, 4))[0]
    assert torch.all(err_sub < 1e-5), err_sub
    assert torch.all(err_whole[1::2] > 1e-3), err_whole  # the half-pixel frames


def test_align_reference_keeps_the_reference_in_place_when_a_frame_shows_nothing():
    reference = _scene(20, 9)
    aligned = align_reference(reference, torch.full((1, 2, 3, 32, 32), 0.3))
    assert torch.equal(aligned[0, 0], reference[0]) and torch.equal(aligned[0, 1], reference[0])


def _with_reference(seed: int = 0) -> VideoTokenizer:
    torch.manual_seed(seed)
    tok = VideoTokenizer(dataclasses.replace(TOK, reference=True)).eval()
    with torch.no_grad():  # as if trained: the gate open where the shifted reference differs
        tok.reference_blend.net[-1].weight.normal_(0, 0.5)
        tok.reference_blend.net[-1].bias.fill_(0.0)
    return tok


def test_reference_leaves_ids_and_plain_decoding_alone():
    tok = _with_reference()
    plain = VideoTokenizer(TOK).eval()
    plain.load_state_dict({k: v for k, v in tok.state_dict().items() if not k.startswith("reference_blend.")})
    clip = torch.rand(2, 9, 3, 32, 32) * 2 - 1
    ids = tok.encode(clip)
    assert torch.equal(ids, plain.encode(clip))
    assert torch.equal(tok.decode(ids), plain.decode(ids))
    assert not torch.allclose(tok.decode(ids, clip[:, 0]), tok.decode(ids))
    assert torch.equal(plain.decode(ids, clip[:, 0]), plain.decode(ids))  # no blend: the reference is ignored


def test_reference_blend_starts_as_the_plain_decoder():
    torch.manual_seed(0)
    tok = VideoTokenizer(dataclasses.replace(TOK, reference=True)).eval()
    clip = torch.rand(1, 9, 3, 32, 32) * 2 - 1
    ids = tok.encode(clip)
    assert (tok.decode(ids, clip[:, 0]) - tok.decode(ids)).abs().max() < 0.01  # gate sigmoid(-6) = 0.0025


def test_reference_decoding_stays_causal():
    tok = _with_reference()
    clip = torch.rand(1, 9, 3, 32, 32) * 2 - 1
    ids = tok.encode(clip)
    later = ids.clone()
    later[:, -1] = (later[:, -1] + 1) % 2**TOK.bits  # change only the last latent frame
    a, b = tok.decode(ids, clip[:, 0]), tok.decode(later, clip[:, 0])
    keep = 1 + TOK.time_stride * (ids.shape[1] - 2)  # frames of the earlier latent frames
    assert torch.equal(a[:, :keep], b[:, :keep]) and not torch.equal(a, b)


def test_reference_blend_from_a_frame_on_gives_those_frames_unchanged():
    """extend keeps only a window's new frames: blending from there on gives exactly those frames, and the
    ones before it as decoded from the ids."""
    tok = _with_reference()
    clip = torch.rand(1, 9, 3, 32, 32) * 2 - 1
    ids, ref = tok.encode(clip), clip[:, 0]
    full, part = tok.decode(ids, ref), tok.decode(ids, ref, blend_from=5)
    assert torch.equal(part[:, 5:], full[:, 5:])
    assert torch.equal(part[:, :5], tok.decode(ids)[:, :5])
