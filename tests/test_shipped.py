"""The shipped default weights, tested for real: loaded from the package, read back by the analyser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model.analysis import psnr, read_clip
from model.config import load_preset, weights_path
from model.data import world
from model.pipeline import VideoPoet
from model.video_io import from_uint8, read_video, to_uint8

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def vp() -> VideoPoet:
    path = weights_path(load_preset("tiny"))
    assert path is not None and path.is_file(), f"shipped weights missing: {path}"
    assert path.stat().st_size <= 30 * 2**20
    return VideoPoet.from_pretrained("tiny")


def _source(color, shape, motion, seed=4242):
    rng = np.random.default_rng(seed)
    scene = world.sample_scene(rng, 17, color=color, shape=shape, motion=motion, allow_held_out=True)
    return scene, world.render(scene, 17, 64)


@pytest.fixture(scope="module")
def red_circle_reads(vp):
    """The README's first command, three seeds, read back by the analyser."""
    return [read_clip(to_uint8(vp.generate("a red circle moving right", seed=s))) for s in range(3)]


def test_red_circle_is_red(red_circle_reads):
    """The prompt's colour: a red object in at least 2 of 3 seeds (held-out colour adherence is high)."""
    assert sum(r.color == "red" for r in red_circle_reads) >= 2, [(r.color, r.shape, r.motion) for r in red_circle_reads]


def test_red_circle_moves_right(red_circle_reads):
    """The issue's bar: a red object moving right in at least 2 of 3 seeds (a strict xfail until the
    fine-tuned weights met it)."""
    good = [r.color == "red" and r.motion == "right" for r in red_circle_reads]
    assert sum(good) >= 2, [(r.color, r.shape, r.motion) for r in red_circle_reads]


def test_shipped_token_ids_mean_content(vp):
    """The issue's token bars on the shipped tokenizer: a constant clip of each background is at most 2 ids
    per latent frame and the same in every latent frame; still scenes keep >= 95% of interior ids from one
    latent frame to the next; a one-cell shift moves >= 90% of interior ids with the scene."""
    from model.diagnostics import token_properties

    p = token_properties(vp.tokenizer)
    assert p["constant_max_ids"] <= 2 and p["constant_same_every_latent_frame"], p["constant_clip"]
    assert p["still_same_as_previous_latent_frame"] >= 0.95, p
    assert p["one_cell_shift_moves_ids"] >= 0.90, p


def test_shipped_lm_finds_later_latent_frames_easier(vp):
    """Once ids are stable, predicting latent frames 1..4 from the ones before is far easier than frame 0."""
    from model.diagnostics import teacher_forced

    ce = teacher_forced(vp, n=16)["cross_entropy_per_latent_frame"]
    assert max(ce[1:]) < 0.7 * ce[0], ce


def test_seeds_differ(vp):
    a = to_uint8(vp.generate("a blue square moving down", seed=1))
    b = to_uint8(vp.generate("a blue square moving down", seed=2))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0


def test_stylize_takes_style_colour_keeps_motion(vp):
    _, clip = _source("red", "circle", "right")
    out = to_uint8(vp.stylize(from_uint8(clip), "a blue circle moving right", seed=0))
    assert out.shape == clip.shape
    r = read_clip(out)
    assert r.color == "blue" and r.motion == "right", (r.color, r.shape, r.motion)


def test_animate_starts_from_the_image(vp):
    _, clip = _source("yellow", "square", "up")
    image = from_uint8(clip[:1])[0]
    out = to_uint8(vp.animate(image, "a yellow square moving up", seed=0))
    recon = to_uint8(vp.tokenizer.decode(vp.tokenizer.encode(image[None, None]))[0])[0]
    assert out.shape == (17, 64, 64, 3)
    assert psnr(clip[0], out[0]) >= psnr(clip[0], recon) - 2.0  # the image itself is the decoder's reference
    assert read_clip(out).color == "yellow"


def test_extend_keeps_the_object(vp):
    _, clip = _source("green", "square", "left")
    out = to_uint8(vp.extend(from_uint8(clip), "a green square moving left", 2.0, seed=0))
    assert out.shape[0] == 17 + 16
    assert np.array_equal(out[:17], clip)  # the input comes through untouched
    assert read_clip(out[16:]).color == "green"


def test_reference_keeps_small_outlines_and_ignores_a_frame_that_does_not_fit(vp):
    """With a true frame of the scene (what extend and animate hand the decoder), small circles 40 frames
    on keep the outline that ids alone often lose (read as squares); another scene's frame changes
    next to nothing."""
    tok = vp.tokenizer
    assert tok.reference_blend is not None
    rng = np.random.default_rng(99)
    plain_ok, ref_ok, psnr_gap, psnr_gain = [], [], [], []
    while len(ref_ok) < 16:
        scene = world.sample_scene(rng, 9, shape="circle", allow_held_out=True)
        if scene.size >= 0.12:
            continue
        x = world.render_times(scene, [0, *range(40, 49)], 64)
        clip = from_uint8(x[1:])[None]
        ids = tok.encode(clip)
        plain, with_ref = to_uint8(tok.decode(ids)[0]), to_uint8(tok.decode(ids, from_uint8(x[:1]))[0])
        plain_ok.append(read_clip(plain).shape == "circle")
        ref_ok.append(read_clip(with_ref).shape == "circle")
        psnr_gain.append(psnr(x[1:], with_ref) - psnr(x[1:], plain))
        other = world.sample_scene(rng, 9, color="blue" if scene.color != "blue" else "red", shape="square")
        wrong = from_uint8(world.render(other, 1, 64))
        psnr_gap.append(psnr(x[1:], to_uint8(tok.decode(ids)[0])) - psnr(x[1:], to_uint8(tok.decode(ids, wrong)[0])))
    assert sum(ref_ok) >= 15 and sum(ref_ok) >= sum(plain_ok), (ref_ok, plain_ok)
    assert np.mean(psnr_gain) > 3.0, psnr_gain
    assert max(psnr_gap) < 1.0, psnr_gap


def test_cli_pipe_animate_into_stylize(tmp_path):
    """`videopoet animate a.png -p .. -o - --format mp4 | videopoet stylize - --style .. -o out.mp4`."""
    import imageio.v3 as iio

    _, clip = _source("white", "circle", "down")
    png = tmp_path / "a.png"
    iio.imwrite(png, clip[0])
    exe = str(Path(sys.executable).parent / "videopoet")
    first = subprocess.run([exe, "animate", str(png), "-p", "a white circle moving down", "-o", "-", "--format", "mp4", "-q"],
                           capture_output=True, timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr.decode()[-500:]
    second = subprocess.run([exe, "stylize", "-", "--style", "a orange circle moving down", "-o", str(tmp_path / "out.mp4"), "-q"],
                            input=first.stdout, capture_output=True, timeout=300)  # fmt: skip
    assert second.returncode == 0, second.stderr.decode()[-500:]
    frames, fps = read_video(str(tmp_path / "out.mp4"))
    assert frames.shape == (17, 128, 128, 3) and abs(fps - 8) < 0.01


def test_inpaint_remakes_the_object_and_keeps_the_rest(vp):
    """A box over a held-out clip's object in its middle frames, prompted with its caption: the object
    comes back in its colour, and away from the box the clip is the input itself."""
    from model.masks import box_mask

    _, clip = _source("yellow", "square", "right", seed=7)
    obj = (np.abs(clip.astype(int) - clip[0, 0, 0]).sum(-1) > 30)[6:11].any(0)
    ys, xs = np.nonzero(obj)
    mask = box_mask((int(xs.min()) - 4, int(ys.min()) - 4, int(xs.max() - xs.min()) + 9, int(ys.max() - ys.min()) + 9), 64, 64)
    out = to_uint8(vp.inpaint(from_uint8(clip), mask, "a yellow square moving right", seed=0))
    r = read_clip(out)
    assert r.color == "yellow", (r.color, r.shape, r.motion)
    cells = vp.mask_cells(mask)
    far = ~torch.nn.functional.max_pool2d(cells[None, None].float(), 3, 1, 1)[0, 0].bool()  # beyond the one-cell ramp
    far_px = far.repeat_interleave(8, 0).repeat_interleave(8, 1).numpy()
    assert np.array_equal(out[:, far_px], clip[:, far_px])


def test_outpaint_continues_the_track(vp):
    """Keep a centre strip half the width of a clip whose object moves right; the border is made from
    the caption and the analyser reads the motion of the whole clip."""
    _, clip = _source("green", "circle", "right", seed=11)
    mask = torch.ones(64, 64, dtype=torch.bool)
    mask[:, 16:48] = False
    out = to_uint8(vp.outpaint(from_uint8(clip), mask, "a green circle moving right", seed=0))
    r = read_clip(out)
    assert (r.color, r.motion) == ("green", "right"), (r.color, r.shape, r.motion)
    assert np.array_equal(out[:, :, 24:40], clip[:, :, 24:40])  # the known middle, beyond the ramp, is the input


def test_jacobi_decoding_gives_the_sequential_clips_on_the_shipped_weights(vp):
    """The default (Jacobi) decoding is a speed-up, not another sampler: on the shipped weights, with the
    preset's guidance, it draws the sequential sampler's ids (a float-rounding near-tie between a chunk pass
    and a one-token pass may flip one clip in four, no more), in far fewer model calls."""
    from model.sampling import sample_jacobi

    t = vp.preset.tokenizer
    n_out = t.latent_shape()[0] * t.tokens_per_latent_frame()
    prompts = ["a red circle moving right", "a blue square moving up", "a green triangle staying still", "a white circle moving left"]
    same, calls = 0, []
    for i, prompt in enumerate(prompts):
        ids = {d: vp._run("t2v", prompt, n_out, seed=i, progress=None, options=vp.sampling_options(decoding=d)) for d in ("sequential", "jacobi")}
        same += bool(torch.equal(ids["sequential"], ids["jacobi"]))
        calls.append(sample_jacobi.calls)
    assert same >= 3, same
    assert max(calls) < n_out * 0.6, calls  # sequential decoding makes n_out model calls
