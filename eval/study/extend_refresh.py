"""Does `extend` keep small outlines if the extension is drawn again from the prompt along the motion it
found? Two passes: `extend` as it is (continuation windows: where the object goes), then the new frames
remade window by window by the motion-transfer task (visual-in: the optical flow of the extension alone,
no structure) or the stylize task (flow + edges), each window's first latent frames forced to the
previous output's last ones, the first window's to the input's last nine frames, so the input's object
carries on without a seam. In the second pass the object's shape comes from the prompt and the forced
frames, not from a chain of re-encoded windows. The eval's extend measure on the clips of extend_sweep.py.
Usage: python eval/study/extend_refresh.py "none;motion;stylize" [N_CLIPS] [SEED_SET,SEED_SET]"""

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import SEED_SETS, measure  # noqa: E402  (this folder: the clips and seeds of that study)
from model.controls import control_video  # noqa: E402
from model.pipeline import VideoPoet, context_frames, frames_per_window  # noqa: E402
from model.video_io import from_uint8, to_uint8  # noqa: E402


class Refresh(VideoPoet):
    task = None  # None: extend as it is; "motion" or "stylize": the second pass

    def extend(self, video, prompt, seconds, *, seed=None, options=None, **kw):
        out = super().extend(video, prompt, seconds, seed=seed, options=options, **kw)
        if self.task is None:
            return out
        options = self.sampling_options(options)
        seed = options.seed if seed is None else seed
        cfgt = self.preset.tokenizer
        k, step = context_frames(cfgt), frames_per_window(cfgt)
        src = out[video.shape[0] - k :]  # the input's last k frames, then the extension
        pad = (-(src.shape[0] - cfgt.frames)) % step
        src = torch.cat([src, src[-1:].expand(pad, *src.shape[1:])]) if pad else src
        control = from_uint8(control_video(to_uint8(src), motion_only=self.task == "motion")).to(self.device)
        made = self._aligned(self.task, prompt, control, None, seed + 7, None, options, start=src[:k])
        return torch.cat([video, made[k : k + out.shape[0] - video.shape[0]]])


if __name__ == "__main__":
    torch.set_num_threads(2)
    vp = Refresh.from_pretrained("tiny")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed_sets = tuple(int(s) for s in sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[3] else SEED_SETS
    for spec in sys.argv[1].split(";"):
        vp.task = None if spec == "none" else spec
        measure(vp, f"second pass: {spec}", n, seed_sets=seed_sets)
