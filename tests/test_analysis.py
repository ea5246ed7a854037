import json

import numpy as np
import pytest

from model.analysis import ClipReading, adherence, classify_color, psnr, read_clip
from model.data.world import BACKGROUNDS, COLORS, MOTIONS, SHAPES, render, render_clips, sample_scene

ATTRS = ("color", "shape", "motion")


def _every_combo(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, color=c, shape=s, motion=m, allow_held_out=True) for c in COLORS for s in SHAPES for m in MOTIONS]


@pytest.fixture(scope="module")
def combos():
    return _every_combo()


def _blur(clip: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in clip])


def _accuracy(scenes, clips) -> dict[str, float]:
    hits = {k: 0 for k in ATTRS + ("background",)}
    misses = []
    for s, c in zip(scenes, clips):
        r = read_clip(c)
        for k in hits:
            ok = getattr(r, k) == getattr(s, k)
            hits[k] += ok
            if not ok:
                misses.append((k, getattr(s, k), getattr(r, k)))
    acc = {k: v / len(scenes) for k, v in hits.items()}
    acc["misses"] = misses[:10]
    return acc


def _assert_perfect(acc):
    assert all(acc[k] == 1.0 for k in ATTRS + ("background",)), acc


def test_reads_every_combo_and_random_scenes_at_64(combos):
    _assert_perfect(_accuracy(combos, [render(s) for s in combos]))
    scenes, clips = render_clips(120, seed=11, allow_held_out=True)
    _assert_perfect(_accuracy(scenes, clips))


def test_reads_128_and_blurred(combos):
    _assert_perfect(_accuracy(combos, [render(s, size=128) for s in combos]))
    clips64 = [render(s) for s in combos]
    _assert_perfect(_accuracy(combos, [_blur(c, 1.0) for c in clips64]))
    _assert_perfect(_accuracy(combos, [_blur(c, 2.0) for c in clips64]))


def test_reads_after_mp4_round_trip(combos, tmp_path):
    iio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    clips = [render(s).repeat(2, axis=1).repeat(2, axis=2) for s in combos]  # 128x128, nearest
    path = str(tmp_path / "all.mp4")  # one file (one ffmpeg run) holding every clip back to back
    writer = iio.get_writer(path, fps=8, codec="libx264", pixelformat="yuv420p", macro_block_size=16, quality=5)
    for c in clips:
        for f in c:
            writer.append_data(f)
    writer.close()
    reader = iio.get_reader(path)
    frames = np.stack([f for f in reader])
    reader.close()
    T = clips[0].shape[0]
    assert frames.shape == (len(clips) * T, 128, 128, 3)
    decoded = frames.reshape(len(clips), T, 128, 128, 3)
    assert np.mean([psnr(a, b) for a, b in zip(clips, decoded)]) < 60  # really lossy
    acc = _accuracy(combos, decoded)
    assert all(acc[k] >= 0.95 for k in ATTRS), acc


def test_blank_and_uniform_clips():
    for rgb in ((0, 0, 0), BACKGROUNDS["light gray"], (120, 30, 30)):
        clip = np.empty((17, 64, 64, 3), np.uint8)
        clip[:] = np.array(rgb, np.uint8)
        r = read_clip(clip)
        assert (r.color, r.shape, r.motion) == (None, None, None), r
        assert r.found_frac == 0.0 and r.steadiness == 0.0
        assert r.centroids == [None] * 17 and r.areas == [0.0] * 17
    assert read_clip(np.zeros((17, 64, 64, 3), np.uint8)).background == "black"
    # a faint smudge (below the contrast floor) is not an object either
    clip = np.full((17, 64, 64, 3), 64, np.uint8)
    clip[:, 20:40, 20:40] = 74
    assert read_clip(clip).found_frac == 0.0


def test_steadiness():
    scenes, clips = render_clips(60, seed=5)
    rng = np.random.default_rng(0)
    clean = [read_clip(c).steadiness for c in clips]
    assert min(clean) >= 0.9, min(clean)
    shuffled, blinking = [], []
    for s, c in zip(scenes, clips):
        if s.motion == "still":
            continue
        shuffled.append(read_clip(c[rng.permutation(len(c))]).steadiness)
        b = c.copy()
        b[1::2] = np.array(BACKGROUNDS[s.background], np.uint8)  # object blinks in and out
        r = read_clip(b)
        assert r.motion == s.motion and 0.4 < r.found_frac < 0.6
        blinking.append(r.steadiness)
    assert max(shuffled) < 0.6 and np.mean(shuffled) < 0.3, shuffled
    assert max(blinking) < 0.6, blinking
    # one teleporting frame costs a little
    s = next(s for s in scenes if s.motion != "still")
    c = render(s)
    c[8] = c[16]
    assert 0.6 < read_clip(c).steadiness < 0.95


def test_motion_is_read_from_the_track_not_assumed():
    scenes, clips = render_clips(40, seed=3)
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up", "still": "still"}
    swapped = {"left": "up", "right": "down", "up": "left", "down": "right", "still": "still"}
    for s, c in zip(scenes, clips):
        assert read_clip(c[::-1]).motion == opposite[s.motion]
        assert read_clip(c.transpose(0, 2, 1, 3)).motion == swapped[s.motion]  # x <-> y


def test_centroids_and_areas_match_the_scene():
    ideal = {"circle": np.pi, "square": 1.8**2, "triangle": 0.5 * 1.92 * 2.28}  # area / size^2
    for s in _every_combo(seed=9)[::7]:
        r = read_clip(render(s, size=128))
        assert r.found_frac == 1.0
        for t, (x, y) in enumerate(r.centroids):
            cx, cy = s.center(t)
            if s.shape == "triangle":  # area centroid of the triangle sits below its bounding-circle centre
                cy += 0.6 * s.size * 1.2 - (1.6 * s.size * 1.2) / 3
            assert abs(x - cx) < 0.01 and abs(y - cy) < 0.01, (s, t, (x, y), (cx, cy))
        assert np.median(r.areas) == pytest.approx(ideal[s.shape] * s.size**2, rel=0.1)
        d = (s.center(16)[0] - s.center(0)[0], s.center(16)[1] - s.center(0)[1])
        assert np.allclose(r.displacement, d, atol=0.01)


def test_color_classifier():
    for name, rgb in COLORS.items():
        assert classify_color(rgb) == name
        dim = tuple(int(v * 0.4) for v in rgb)  # darker, same hue
        assert classify_color(dim) == (name if name != "white" else None)
    assert classify_color((128, 128, 128)) is None
    assert classify_color((200, 200, 200)) == "white"
    assert classify_color((255, 0, 255)) == "purple"


def test_adherence():
    s = sample_scene(np.random.default_rng(1), color="green", shape="square", motion="up", allow_held_out=True)
    r = read_clip(render(s))
    assert isinstance(r, ClipReading)
    assert adherence(r, "green", "square", "up") == {"color": True, "shape": True, "motion": True, "all": True}
    assert adherence(r, "green", "circle", "up") == {"color": True, "shape": False, "motion": True, "all": False}
    assert adherence(r, "blue", "square", "down")["all"] is False


def test_psnr():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(10 * np.log10(255.0**2), abs=1e-9)
    assert psnr(a, np.full_like(a, 255)) == pytest.approx(0.0, abs=1e-9)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # no uint8 wrap-around
    assert psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 / (255.0**2 / a.size)))
    with pytest.raises(ValueError):
        psnr(a, a[:1])


def test_objects_bounce_off_the_walls():
    """A clip rendered far past its training length keeps its object in view (it bounces, Moving-MNIST
    style); training clips never reach a wall; at_wall clips turn back within the clip."""
    from model.data.world import walls

    rng = np.random.default_rng(3)
    for motion in ("left", "right", "up", "down"):
        scene = sample_scene(rng, 17, color="red", shape="circle", motion=motion, allow_held_out=True)
        long = render(scene, 120, 64)
        r = read_clip(long)
        assert all(c is not None for c in r.centroids), motion  # visible in every one of 120 frames
        axis = 0 if motion in ("left", "right") else 1
        track = np.array([c[axis] for c in r.centroids])
        assert np.sign(np.diff(track)).min() < 0 < np.sign(np.diff(track)).max()  # it turned back
        lo, hi = walls(scene.size)
        assert all(lo <= scene.center(t)[axis] <= hi for t in range(500))
    for scene in render_clips(200, 4)[0]:  # training clips: straight lines, no wall within 17 frames
        axis = 0 if scene.motion in ("left", "right") else 1
        d = np.diff([scene.center(t)[axis] for t in range(17)])
        assert (d >= -1e-9).all() or (d <= 1e-9).all()
    turned = 0
    for scene in render_clips(50, 4, at_wall=True)[0]:
        axis = 0 if scene.motion in ("left", "right") else 1
        d = np.diff([scene.center(t)[axis] for t in range(17)])
        assert scene.motion != "still"
        turned += bool((d > 1e-9).any() and (d < -1e-9).any())
    assert turned >= 45


@pytest.mark.parametrize("break_at", [None, 25])
def test_extend_eval_counts_every_seam(break_at):
    """eval_extend reads each window seam: a perfect continuation keeps every seam; one whose object turns
    into another shape from frame `break_at` on loses the seams after it, and with them the clip."""
    import dataclasses
    from types import SimpleNamespace

    from model.config import load_preset
    from model.evaluate import _source_clips, eval_extend
    from model.video_io import from_uint8

    vp = SimpleNamespace(preset=load_preset("tiny"))
    scenes = [s for s, _ in _source_clips(vp, 2)]
    calls = []

    def extend(video, prompt, seconds, seed, options):
        scene = scenes[len(calls)]
        calls.append(seed)
        n = video.shape[0] + round(seconds * 8)
        out = render(scene, n)
        if break_at is not None:
            other = dataclasses.replace(scene, shape=next(s for s in SHAPES if s != scene.shape))
            out[break_at:] = render(other, n)[break_at:]
        return from_uint8(out)

    vp.extend = extend
    r = eval_extend(vp, n=2, seconds=5.0, seed=3)  # 17 frames + 24: seams at frames 17, 25, 33
    assert calls == [3, 4] and r["seams"] == 6 and r["n"] == 2
    assert [c["background"] for c in r["clips"]] == [s.background for s in scenes]
    json.dumps(r)  # the eval writes it as JSON
    assert r["seams_at_wall"] <= r["seams"] and all(isinstance(x["at_wall"], bool) for c in r["clips"] for x in c["lost"])
    if break_at is None:
        assert r["keeps_color_shape"] == 1.0 and r["seams_kept"] == 1.0
        assert all(c["kept"] and c["lost"] == [] for c in r["clips"])
    else:  # the seams at 25 (window 17..33: mostly the new shape) and 33 are lost
        assert r["keeps_color_shape"] == 0.0 and r["seams_kept"] == pytest.approx(1 / 3)
        for c, s in zip(r["clips"], scenes):
            assert not c["kept"] and [x["seam"] for x in c["lost"]] == [1, 2]
            assert all(x["read"][1] != s.shape for x in c["lost"])  # the clip's lost seams, as read


def test_eval_source_clips_come_from_the_eval_seed_unless_told():
    """Study scripts choose settings on other clips (clip_seed); the eval's own are fixed by EVAL_SEED."""
    from types import SimpleNamespace

    from model.config import load_preset
    from model.evaluate import EVAL_SEED, _source_clips

    vp = SimpleNamespace(preset=load_preset("tiny"))
    own, again, other = (_source_clips(vp, 3, *s) for s in ((), (EVAL_SEED,), (5151,)))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(own, again))
    assert not any(np.array_equal(a[1], b[1]) for a, b in zip(own, other))


def test_edge_gap_says_when_the_object_meets_a_wall():
    """The wall reading that splits extend's seams: an object that bounces comes within a few pixels of the
    frame's edge, one centred and still stays far from it, one cut by the frame's edge (as `extend`
    sometimes draws it) reads 0, and no object reads more than the frame."""
    import dataclasses

    from model.evaluate import WALL_PX, edge_gap

    for s in render_clips(20, 4, at_wall=True)[0]:
        assert edge_gap(render(s), s.background) <= 3
    centred = dataclasses.replace(render_clips(1, 5)[0][0], x0=0.5, y0=0.5, motion="still", speed=0.0)
    assert edge_gap(render(centred, 3), centred.background) >= 32 * (1 - 2.4 * centred.size) - 1
    cut = np.roll(render(centred, 3), 32, axis=2)  # the object's centre on the left edge
    assert edge_gap(cut, centred.background) == 0 <= WALL_PX
    blank = np.zeros((3, 64, 64, 3), np.uint8) + np.array(BACKGROUNDS[centred.background], np.uint8)
    assert edge_gap(blank, centred.background) > 64
