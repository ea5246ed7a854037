"""Where training clips come from: the procedural world (`world:N`) or a folder of the user's videos.

A folder holds videos (mp4/gif/webm/...) and `captions.jsonl` with lines
`{"video": "relative/path.mp4", "caption": "..."}` — the same format `videopoet data synth` writes.
Clips are resampled to the preset's fps, centre-cropped and resized to its size, and cut to its frame
count; an unreadable or too-short file is skipped and counted, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import InvalidInput
from . import world
from .captions import caption


@dataclass
class ClipSet:
    clips: np.ndarray  # uint8 (N, T, H, W, 3)
    captions: list[list[str]]  # per clip, one or more captions (the same count for every clip)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    continue_only: int = 0  # the last this many clips train the continuation task only (world: at_wall clips)


def world_clips(count: int, seed: int, frames: int, size: int, captions_per_clip: int = 3, wall_clips: int = 0) -> ClipSet:
    """`count` clips whose object stays clear of the walls, then `wall_clips` whose object bounces off one
    (continuation only: their captions name the motion before the bounce)."""
    scenes, clips = world.render_clips(count, seed, frames, size)
    rng = np.random.default_rng([seed, 7])
    caps = [[caption(s, rng, "train") for _ in range(captions_per_clip)] for s in scenes]
    if wall_clips:
        w_scenes, w_clips = world.render_clips(wall_clips, seed + 1_000_003, frames, size, at_wall=True)
        w_rng = np.random.default_rng([seed, 8])
        caps += [[caption(s, w_rng, "train") for _ in range(captions_per_clip)] for s in w_scenes]
        clips = np.concatenate([clips, w_clips])
    return ClipSet(clips, caps, continue_only=wall_clips)


def folder_clips(folder: Path, frames: int, size: int, fps: float, log: Callable[[str], None] = print) -> ClipSet:
    from ..video_io import center_crop_resize, read_video, resample_fps

    folder = Path(folder)
    index = folder / "captions.jsonl"
    if not index.is_file():
        raise InvalidInput(f"{folder}: no captions.jsonl (lines of {{\"video\": ..., \"caption\": ...}})")
    clips, caps, skipped = [], [], {}
    root = folder.resolve()

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for n, line in enumerate(index.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            path, text = folder / item["video"], str(item["caption"]).strip()
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            skip("bad captions.jsonl line")
            continue
        if not text:
            skip("empty caption")
            continue
        # a clip must live inside the data folder: no "../", absolute paths or symlinks leading out of it
        if not path.resolve().is_relative_to(root):
            skip("path outside the data folder")
            log(f"skipping {item['video']}: outside {folder}")
            continue
        try:
            video, vfps = read_video(str(path))
        except Exception as e:  # one bad file never stops the rest
            skip(f"unreadable ({type(e).__name__})")
            log(f"skipping {path}: {e}")
            continue
        if vfps > 0:
            video = resample_fps(video, vfps, fps)
        if len(video) < frames:
            skip("shorter than one clip")
            continue
        clips.append(center_crop_resize(video[:frames], size))
        caps.append([text])
    if not clips:
        raise InvalidInput(f"{folder}: no usable clips ({sum(skipped.values())} skipped)")
    return ClipSet(np.stack(clips), caps, skipped)


def world_count(spec: str) -> Optional[int]:
    """N of a `world:N` data source (checked), or None when `spec` names something else (a folder)."""
    if not spec.startswith("world:"):
        return None
    try:
        count = int(spec.split(":", 1)[1])
    except ValueError:
        raise InvalidInput(f"data source {spec!r}: expected world:N with N a whole number") from None
    if not 1 <= count <= 1_000_000:
        raise InvalidInput(f"data source {spec!r}: N must be in 1..1000000")
    return count


def load_clips(spec: str, frames: int, size: int, fps: float, seed: int = 0, log: Callable[[str], None] = print,
               wall_clips: int = 0) -> ClipSet:  # fmt: skip
    """`world:N` (N procedural clips drawn from `seed`, plus `wall_clips` bouncing ones) or a folder path."""
    count = world_count(spec)
    if count is not None:
        return world_clips(count, seed, frames, size, wall_clips=wall_clips)
    path = Path(spec)
    if not path.is_dir():
        raise InvalidInput(f"data source {spec!r}: not a folder and not world:N")
    return folder_clips(path, frames, size, fps, log)


def write_world(out: Path, count: int, seed: int, frames: int, size: int, fps: float, progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """`videopoet data synth`: clips as MP4 plus captions.jsonl (the user-data format)."""
    from ..video_io import write_video

    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cap_rng = np.random.default_rng([seed, 7])
    lines = []
    for i in range(count):
        scene = world.sample_scene(rng, frames)
        rel = f"clips/{i:06d}.mp4"
        write_video(world.render(scene, frames, size), str(out / rel), fps, "mp4", overwrite=True)
        lines.append(json.dumps({"video": rel, "caption": caption(scene, cap_rng, "train"),
                                 "color": scene.color, "shape": scene.shape, "motion": scene.motion}))  # fmt: skip
        if progress:
            progress(i + 1, count)
    index = out / "captions.jsonl"
    index.write_text("\n".join(lines) + "\n")
    return index
