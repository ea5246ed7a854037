"""Which thread count suits each phase of the default clip? Each phase timed at 1..N intra-op threads.

    python bench/threads_probe.py            # idle machine, about a minute

Phases: text encoding, the LM's prefill, the sampler (the preset's decoding, prefill included), the
tokenizer's decode and writing the MP4. Prints one JSON object: median seconds per phase and thread count,
and the fastest count per phase. This is the measurement behind the CLI's thread default (README).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import torch

from model import tasks
from model.pipeline import VideoPoet
from model.sampling import sample, sample_jacobi
from model.video_io import to_uint8, upscale, write_video

PROMPT = "a red circle moving right"


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def measure(vp: VideoPoet, reps: int = 5) -> dict:
    """Median seconds of each phase at 1..N threads (N = the CPUs this process may use)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    before = torch.get_num_threads()
    o = vp.sampling_options()
    t = vp.preset.tokenizer
    n_out = t.latent_shape()[0] * t.tokens_per_latent_frame()
    states, valid, pooled = vp.encode_text([PROMPT])
    seq = tasks.build("t2v", states, valid, pooled, n_out)
    sampler = sample_jacobi if o.decoding == "jacobi" else sample
    ids = sampler(vp.lm, seq, o, generator=torch.Generator().manual_seed(0))
    frames = upscale(to_uint8(vp._decode(ids)[0]), vp.preset.video.display_size)
    folder = tempfile.mkdtemp()

    def prefill():
        run = seq.doubled() if o.guidance != 1.0 else seq
        vp.lm.prefill(run, vp.lm.new_cache(run.batch, seq.prefix_len + n_out, "cpu"))

    def write():
        path = os.path.join(folder, "clip.mp4")
        write_video(frames, path, vp.preset.video.fps, "mp4", overwrite=True)

    phases = {
        "text_encode": lambda: (vp._text_cache.clear(), vp.encode_text([PROMPT])),
        "prefill": prefill,
        "sampling": lambda: sampler(vp.lm, seq, o, generator=torch.Generator().manual_seed(0)),
        "tokenizer_decode": lambda: vp._decode(ids),
        "write_mp4": write,
    }
    report: dict = {"cpus": cpus, "decoding": o.decoding, "guidance": o.guidance, "seconds": {}}
    with torch.no_grad():
        for name, fn in phases.items():
            report["seconds"][name] = {}
            for n in range(1, cpus + 1):
                torch.set_num_threads(n)
                report["seconds"][name][n] = timed(fn, reps)
    torch.set_num_threads(before)
    report["best_threads"] = {k: min(v, key=v.get) for k, v in report["seconds"].items()}
    return report


def main() -> None:
    print(json.dumps(measure(VideoPoet.from_pretrained("tiny")), indent=1))


if __name__ == "__main__":
    main()
