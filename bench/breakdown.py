"""One instrumented cold `generate` (argv: CHECKPOINT OUT.mp4 PROMPT): prints one JSON line of per-step times."""
import json, sys, time
T = [("start", time.perf_counter())]
def mark(name): T.append((name, time.perf_counter()))
import torch
from model.pipeline import VideoPoet
mark("imports")
ckpt, out_path, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
vp = VideoPoet.from_pretrained("tiny", ckpt)
mark("model_load")
from model.text import shared_text_encoder
shared_text_encoder(vp.preset.lm.max_text_tokens)
mark("text_encoder_load")
states, valid, pooled = vp.encode_text([prompt])
mark("text_encode")
from model import tasks
from model.sampling import sample, sample_jacobi
t = vp.preset.tokenizer
n_out = t.latent_shape()[0] * t.tokens_per_latent_frame()
options = vp.sampling_options()  # the default clip's: the preset's decoding (jacobi), guidance, no negative
seq = tasks.build("t2v", states, valid, pooled, n_out)
gen = torch.Generator(device=vp.device).manual_seed(int(options.seed))
sampler = sample_jacobi if options.decoding == "jacobi" else sample
ids = sampler(vp.lm, seq, options, generator=gen)
mark("sampling")
video = vp._decode(ids)[0]
mark("tokenizer_decode")
from model.video_io import to_uint8, upscale, write_video
write_video(upscale(to_uint8(video), vp.preset.video.display_size), out_path, vp.preset.video.fps, "mp4", overwrite=True)
mark("write_file")
steps = {T[i][0]: T[i][1] - T[i - 1][1] for i in range(1, len(T))}
print(json.dumps({"steps": steps, "in_script_s": T[-1][1] - T[0][1], "cfg": options.guidance, "decoding": options.decoding, "n_out": n_out,
                  "threads": torch.get_num_threads()}))
