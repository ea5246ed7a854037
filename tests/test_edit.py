"""Inpainting and outpainting: the task layouts, the masks, old checkpoints, the pipeline and the commands.

Layout and mask properties are checked exactly; the pipeline and commands run on random weights (the
mechanics: what is kept, what is hidden, sizes, errors). What the shipped model makes of them is in
tests/test_shipped.py and `videopoet eval`.
"""

import json

import numpy as np
import pytest
import torch

from model import tasks
from model.errors import InvalidInput
from model.masks import box_mask, check_mask, draw_inpaint, draw_outpaint, feather, latent_cells, paste_back, pixel_to_model

from cli_helpers import M, cli, ok, read_back, write_clip


def _text(B=2, Lt=4, d=8):
    return torch.zeros(B, Lt, d), torch.ones(B, Lt, dtype=torch.bool), torch.zeros(B, d)


# ----------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("task", ["inpaint", "outpaint"])
def test_masked_cells_become_the_mask_token(task):
    ids = torch.arange(40).view(2, 20) % 7
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[0, 3:6] = True
    mask[1, 10] = True
    seq = tasks.build(task, *_text(), 20, visual_in=ids, visual_out=ids, in_mask=mask)
    vin = seq.tokens[:, seq.in_start : seq.in_start + seq.n_in]
    assert (vin[mask] == tasks.SPECIAL["<mask>"]).all()
    assert (vin[~mask] == tasks.visual_token(ids)[~mask]).all()  # the rest is the clip's own ids
    assert seq.tokens[0, 1] == tasks.SPECIAL[f"<task_{task}>"]
    assert not seq.out_follows_in  # output aligned with the input in time, as for stylize
    assert seq.n_out == 20 and seq.n_in == 20


def test_mask_token_is_special_and_tokens_only_appended():
    assert tasks.SPECIAL["<mask>"] < tasks.N_SPECIAL  # never a visual id
    assert tasks.SPECIAL_TOKENS[: tasks.LEGACY_N_SPECIAL[0]][-1] == "<eov_o>"  # old ids keep their meaning


def test_masked_layout_errors():
    ids = torch.zeros(2, 20, dtype=torch.long)
    with pytest.raises(ValueError, match="needs mask"):
        tasks.build("inpaint", *_text(), 20, visual_in=ids)
    with pytest.raises(ValueError, match="takes no mask"):
        tasks.build("stylize", *_text(), 20, visual_in=ids, in_mask=torch.zeros(2, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not match"):
        tasks.build("outpaint", *_text(), 20, visual_in=ids, in_mask=torch.zeros(2, 19, dtype=torch.bool))


# ----------------------------------------------------------------------------- training masks


def test_training_masks_are_boxes_and_borders():
    rng = np.random.default_rng(0)
    shape = (5, 8, 8)
    for _ in range(200):
        m = draw_inpaint(rng, shape)
        assert m.any() and not m.all()
        t, y, x = np.nonzero(m)
        box = np.zeros_like(m)
        box[t.min() : t.max() + 1, y.min() : y.max() + 1, x.min() : x.max() + 1] = True
        assert (box == m).all()  # one solid box
        assert 2 <= y.max() - y.min() + 1 <= 6 and 2 <= x.max() - x.min() + 1 <= 6
        o = draw_outpaint(rng, shape)
        assert o.any() and not o.all()
        assert (o == o[:1]).all()  # every latent frame
        ys, xs = np.nonzero(~o[0])  # the known part is a rectangle not touching a hidden side
        known = np.zeros((8, 8), bool)
        known[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        assert (known == ~o[0]).all()


def test_training_batches_hide_cells(tmp_path):
    from model.train.lm import TokenData

    class Fake(TokenData):
        def __init__(self):
            self.ids = torch.randint(0, 64, (6, 5, 8, 8))
            self.style = self.motion = self.ids
            self.states, self.valid, self.pooled = torch.zeros(6, 2, 4, 8), torch.ones(6, 2, 4, dtype=torch.bool), torch.zeros(6, 2, 8)
            self.tpf, self.text_dropout, self.continue_only = 64, 0.0, 0

    rng = np.random.default_rng(1)
    for task in ("inpaint", "outpaint"):
        seq, target = Fake().batch(task, 4, rng, "cpu")
        vin = seq.tokens[:, seq.in_start : seq.in_start + seq.n_in]
        hidden = vin == tasks.SPECIAL["<mask>"]
        assert hidden.any(dim=1).all() and not hidden.all(dim=1).any()
        assert (vin[~hidden] - tasks.N_SPECIAL == target[~hidden]).all()  # visible cells are the target's ids


# ----------------------------------------------------------------------------- user masks


def test_latent_cells_hide_every_touched_cell():
    m = torch.zeros(64, 64, dtype=torch.bool)
    m[7, 8] = True  # one pixel in cell (0, 1)
    c = latent_cells(m, 8)
    assert c.sum() == 1 and c[0, 1]
    m[:, :] = False
    m[16:32, 16:33] = True  # 1 px into column 4
    assert latent_cells(m, 8)[2:4, 2:5].all() and latent_cells(m, 8).sum() == 6


def test_box_and_mask_refusals():
    with pytest.raises(InvalidInput, match="outside"):
        box_mask((70, 0, 5, 5), 64, 64)
    with pytest.raises(InvalidInput, match="positive"):
        box_mask((0, 0, 0, 5), 64, 64)
    with pytest.raises(InvalidInput, match="no part"):
        check_mask(torch.zeros(8, 8, dtype=torch.bool), "--box")
    with pytest.raises(InvalidInput, match="whole frame"):
        check_mask(torch.ones(8, 8, dtype=torch.bool), "--box")
    assert box_mask((-5, -5, 10, 10), 64, 64).sum() == 25  # clipped to the frame


def test_pixel_to_model_keeps_small_regions_and_the_centre_square():
    m = torch.zeros(100, 200, dtype=torch.bool)
    m[50, 100] = True  # one pixel in the centre square (x 50..150)
    assert pixel_to_model(m, 64).any()
    m[:] = False
    m[:, :40] = True  # left of the centre square
    assert not pixel_to_model(m, 64).any()


def test_feather_ramps_over_one_cell():
    cells = torch.zeros(8, 8, dtype=torch.bool)
    cells[3:5, 3:5] = True
    w = feather(cells, (64, 64))
    assert (w[24:40, 24:40] == 1).all()  # inside: the made clip
    assert w[0:8].max() == 0 and w[:, 48:].max() == 0  # beyond one cell: the input
    ring = w[40:48, 24:40]
    assert 0 < ring.mean() < 1 and (ring[:-1] >= ring[1:]).all()  # falling across the next cell


def test_paste_back_keeps_the_input_outside():
    full = np.random.default_rng(0).integers(0, 256, (3, 80, 100, 3), dtype=np.uint8)
    made = torch.ones(3, 3, 64, 64)  # white
    cells = torch.zeros(8, 8, dtype=torch.bool)
    cells[0:2, 0:2] = True
    out = paste_back(full, made, cells)
    assert out.shape == full.shape
    assert (out[:, :, :10] == full[:, :, :10]).all()  # outside the centre square: untouched
    assert (out[:, 0:20, 10:30] == 255).all()  # the hidden cells (2 of 8 cells of an 80-px square)
    assert (out[:, 40:, 60:] == full[:, 40:, 60:]).all()


# ----------------------------------------------------------------------------- old checkpoints


def test_checkpoint_with_fewer_special_tokens_loads():
    from model.config import load_preset
    from model.transformer import PrefixLM

    p = load_preset("tiny")
    torch.manual_seed(0)
    lm = PrefixLM.for_tokenizer(p.lm, p.tokenizer)
    state = lm.state_dict()
    n_old = tasks.LEGACY_N_SPECIAL[0]
    old = dict(state)
    old["embed.weight"] = torch.cat([state["embed.weight"][:n_old], state["embed.weight"][tasks.N_SPECIAL :]])
    fresh = PrefixLM.for_tokenizer(p.lm, p.tokenizer)
    from model.checkpoint import load_into

    load_into(fresh, {f"lm.{k}": v for k, v in old.items()}, "lm", "old.safetensors")
    e, e0 = fresh.embed.weight, state["embed.weight"]
    assert torch.equal(e[:n_old], e0[:n_old]) and torch.equal(e[tasks.N_SPECIAL :], e0[tasks.N_SPECIAL :])
    assert torch.equal(e[tasks.SPECIAL["<task_inpaint>"]], e0[tasks.SPECIAL["<task_stylize>"]])


# ----------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def vp_micro(micro):  # noqa: F811
    from model.pipeline import VideoPoet

    return VideoPoet.from_pretrained(str(micro[0]), checkpoint=micro[1])


def test_inpaint_keeps_the_input_outside_the_hidden_cells(vp_micro):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(17, 3, 64, 64, generator=g) * 2 - 1
    mask = box_mask((20, 20, 10, 10), 64, 64)
    out = vp_micro.inpaint(video, mask, "a red circle", seed=0)
    assert out.shape == video.shape
    far = torch.ones(64, 64, dtype=torch.bool)
    far[8:40, 8:40] = False  # beyond the one-cell ramp around cells 2..3 (pixels 16..31)
    assert torch.equal(out[:, :, far], video[:, :, far])
    raw = vp_micro.inpaint(video, mask, "a red circle", seed=0, blend=False)
    assert torch.equal(raw[:, :, 16:32, 16:32], out[:, :, 16:32, 16:32])  # inside: the model's output
    with pytest.raises(InvalidInput, match="shape"):
        vp_micro.inpaint(video, torch.zeros(32, 32, dtype=torch.bool), "x")
    with pytest.raises(InvalidInput, match="no part"):
        vp_micro.outpaint(video, torch.zeros(64, 64, dtype=torch.bool), "x")


def test_inpaint_and_outpaint_sample_with_the_edit_guidance(vp_micro):
    """edit_guidance is what the masked tasks' sampler gets as guidance: the same ids as that guidance
    given plainly, and other ids than the clip guidance (random weights: any change of guidance shows)."""
    from model.config import SamplingOptions

    g = torch.Generator().manual_seed(1)
    video = torch.rand(17, 3, 64, 64, generator=g) * 2 - 1
    mask = box_mask((16, 16, 24, 24), 64, 64)
    for fn in (vp_micro.inpaint, vp_micro.outpaint):
        run = lambda o: fn(video, mask, "a red circle", seed=0, blend=False, options=o)  # noqa: E731
        split = run(SamplingOptions(guidance=1.0, edit_guidance=5.0))
        assert torch.equal(split, run(SamplingOptions(guidance=5.0)))
        assert not torch.equal(split, run(SamplingOptions(guidance=1.0)))


# ----------------------------------------------------------------------------- commands


def test_inpaint_command_keeps_the_input_size(micro, cwd):  # noqa: F811
    write_clip(cwd / "in.mp4", T=9, H=80, W=100, fps=8)
    r = ok(cli("inpaint", "in.mp4", "--box", "30,20,20,20", "-p", "a red circle", *M(micro), "-o", "out.mp4", "--json"))
    rec = json.loads(r.stdout)
    assert rec["command"] == "inpaint" and rec["box"] == [30, 20, 20, 20] and rec["frames"] == 9
    frames, fps = read_back(cwd / "out.mp4")
    src, _ = read_back(cwd / "in.mp4")
    assert frames.shape == (9, 80, 100, 3) and fps == 8
    # far from the box the input is kept (up to the codec)
    assert np.abs(frames[:, 60:, :].astype(int) - src[:, 60:, :]).mean() < 3


def test_inpaint_with_a_mask_image(micro, cwd):  # noqa: F811
    from PIL import Image

    write_clip(cwd / "in.mp4", T=9, H=64, W=64, fps=8)
    m = np.zeros((64, 64), np.uint8)
    m[10:20, 40:50] = 255
    Image.fromarray(m).save(cwd / "m.png")
    ok(cli("inpaint", "in.mp4", "--mask", "m.png", "-p", "x", *M(micro), "-o", "o.gif", "-q"))
    assert read_back(cwd / "o.gif")[0].shape == (9, 64, 64, 3)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(cwd / "small.png")
    r = cli("inpaint", "in.mp4", "--mask", "small.png", "-p", "x", *M(micro), "-o", "p.gif")
    assert r.exit_code == 2 and "input's size" in r.stderr
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(cwd / "empty.png")
    r = cli("inpaint", "in.mp4", "--mask", "empty.png", "-p", "x", *M(micro), "-o", "p.gif")
    assert r.exit_code == 2 and "hides no part" in r.stderr
    assert not (cwd / "p.gif").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box", "200,200,5,5"], "outside"),
        (["--box", "0,0,64,64"], "whole frame"),
        (["--box", "1,2,3"], "X,Y,W,H"),
        ([], "--box X,Y,W,H or --mask"),
        (["--box", "1,1,5,5", "--mask", "m.png"], "one of them"),
    ],
)
def test_inpaint_bad_regions(micro, cwd, args, message):  # noqa: F811
    write_clip(cwd / "in.mp4", T=9, H=64, W=64, fps=8)
    r = cli("inpaint", "in.mp4", *args, "-p", "x", *M(micro), "-o", "o.mp4")
    assert r.exit_code == 2 and message in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
    assert not (cwd / "o.mp4").exists()


def test_outpaint_command_writes_the_canvas(micro, cwd):  # noqa: F811
    write_clip(cwd / "in.mp4", T=9, H=64, W=32, fps=8)
    r = ok(cli("outpaint", "in.mp4", "--pad", "16,0,16,0", "-p", "x", *M(micro), "-o", "out.mp4", "--json"))
    assert json.loads(r.stdout)["pad"] == [16, 0, 16, 0]
    frames, _ = read_back(cwd / "out.mp4")
    src, _ = read_back(cwd / "in.mp4")
    assert frames.shape == (9, 64, 64, 3)
    assert np.abs(frames[:, :, 28:36].astype(int) - src[:, :, 12:20]).mean() < 3  # the input's middle kept
    ok(cli("outpaint", "in.mp4", "--to", "96x64", "-p", "x", *M(micro), "-o", "wide.gif", "-q"))
    assert read_back(cwd / "wide.gif")[0].shape == (9, 64, 96, 3)  # a wide canvas, made as its square


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pad", "0,0,0,0"], "own size"),
        (["--pad", "1,-1,0,0"], ">= 0"),
        (["--to", "16x16"], "smaller than the input"),
        (["--to", "96"], "WxH"),
        (["--to", "5000x64"], "at most"),
        ([], "--pad L,T,R,B or --to"),
    ],
)
def test_outpaint_bad_canvas(micro, cwd, args, message):  # noqa: F811
    write_clip(cwd / "in.mp4", T=9, H=64, W=64, fps=8)
    r = cli("outpaint", "in.mp4", *args, "-p", "x", *M(micro), "-o", "o.mp4")
    assert r.exit_code == 2 and message in r.stderr
    assert not (cwd / "o.mp4").exists()


def test_outpaint_from_stdin(micro, cwd):  # noqa: F811
    write_clip(cwd / "in.mp4", T=9, H=48, W=48, fps=8)
    data = (cwd / "in.mp4").read_bytes()
    ok(cli("outpaint", "-", "--to", "64x64", "-p", "x", *M(micro), "-o", "o.gif", "-q", input=data))
    assert read_back(cwd / "o.gif")[0].shape == (9, 64, 64, 3)


def test_samplers_keep_the_known_ids(vp_micro):
    from model.config import SamplingOptions
    from model.sampling import sample, sample_jacobi, sample_uncached

    lm = vp_micro.lm
    B, n = 2, 64
    states, valid, pooled = vp_micro.encode_text(["a red circle"] * B)
    ids = torch.randint(0, lm.visual_vocab, (B, n))
    hidden = torch.zeros(B, n, dtype=torch.bool)
    hidden[:, 20:30] = True
    seq = tasks.build("inpaint", states, valid, pooled, n, visual_in=ids, in_mask=hidden)
    import dataclasses

    seq = dataclasses.replace(seq, out_known=ids.masked_fill(hidden, -1))
    outs = []
    for fn in (sample, sample_uncached, sample_jacobi):
        g = torch.Generator().manual_seed(0)
        outs.append(fn(lm, seq, SamplingOptions(guidance=2.0), generator=g))
    for out in outs:
        assert torch.equal(out[~hidden], ids[~hidden])  # visible cells kept exactly
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])  # cached == recompute == Jacobi


def test_inpaint_keeps_visible_tokens_so_the_outside_is_the_reconstruction(vp_micro):
    from model.analysis import psnr
    from model.video_io import to_uint8

    g = torch.Generator().manual_seed(1)
    video = (torch.rand(17, 3, 64, 64, generator=g) * 2 - 1).clamp(-1, 1)
    mask = box_mask((24, 24, 8, 8), 64, 64)  # one cell
    raw = to_uint8(vp_micro.inpaint(video, mask, "x", seed=0, blend=False))
    rec = to_uint8(vp_micro.tokenizer.decode(vp_micro.tokenizer.encode(video[None]))[0])
    far = np.ones((64, 64), bool)
    far[8:48, 8:48] = False
    # away from the hidden cell the output is the tokenizer's own reconstruction, up to the decoder's
    # per-frame GroupNorm (its statistics see every cell); drawn freely, this random model's cells read ~10 dB
    assert psnr(raw[:, far], rec[:, far]) > 25
