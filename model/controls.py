"""Control videos for stylization: what a clip's motion and structure look like, with no learned model.

Encoding (uint8 RGB, same size and frame count as the source):
  R = 128 + 127 * clip(flow_x / (FLOW_SCALE * W), -1, 1)     dense Farnebäck flow from frame t-1 to t
  G = 128 + 127 * clip(flow_y / (FLOW_SCALE * W), -1, 1)     (frame 0 has zero flow: the control is causal)
  B = 255 * structure, the Sobel gradient magnitude of the grey frame normalized by its 99th percentile
      over the clip (0 everywhere in motion-only mode: flow alone = motion transfer)
The control video is tokenized by the same VideoTokenizer as any clip.
"""

from __future__ import annotations

import numpy as np

FLOW_SCALE = 1.0 / 16.0  # flow of W/16 pixels per frame saturates the channel


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(video: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, H, W, 2) flow in pixels; flow[0] = 0."""
    import cv2

    T, H, W, _ = video.shape
    flow = np.zeros((T, H, W, 2), dtype=np.float32)
    prev = _gray(video[0])
    for t in range(1, T):
        cur = _gray(video[t])
        flow[t] = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        prev = cur
    return flow


def structure(video: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, H, W) in [0, 1]: edge strength."""
    import cv2

    mags = []
    for frame in video:
        g = _gray(frame).astype(np.float32)
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        mags.append(np.sqrt(gx * gx + gy * gy))
    m = np.stack(mags)
    scale = max(float(np.percentile(m, 99)), 1e-3)
    return np.clip(m / scale, 0.0, 1.0)


def control_video(video: np.ndarray, motion_only: bool = False) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, H, W, 3) control video (see module docstring)."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError("control_video expects uint8 (T, H, W, 3)")
    T, H, W, _ = video.shape
    flow = optical_flow(video) / (FLOW_SCALE * W)
    out = np.empty((T, H, W, 3), dtype=np.uint8)
    out[..., :2] = np.clip(128 + 127 * np.clip(flow, -1, 1), 0, 255).astype(np.uint8)
    if motion_only:
        out[..., 2] = 0
    else:
        out[..., 2] = (255 * structure(video) + 0.5).astype(np.uint8)
    return out
