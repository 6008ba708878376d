"""Mouth crops and audio windows: what the lip-sync expert sees.

Mouth box per frame from mediapipe-numbered landmarks (T, 478, 2): centred on the lip points,
``box_w = scale x inter-ocular distance`` wide, with the crop's aspect ratio; centres and sizes are
median-smoothed over 5 frames (less jitter) and frames without a face take the nearest valid box.
Crops are resampled with an affine warp (border replicated) to (crop_h, crop_w).

Audio windows: the 50 Hz mel stream (2N, 80) of ``talklib.audio.features.mel_stream``; the window of
video window i (frames i .. i+T-1) is stream steps 2i .. 2i + 2T - 1.
"""

from __future__ import annotations

import numpy as np

from talklib.errors import UserError

#: The 40 lip-contour points of mediapipe's FACEMESH_LIPS (outer + inner lip line), mediapipe numbering.
MOUTH_40 = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
            78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
MOUTH_SCALE = 1.1  # crop width in inter-ocular distances


def mouth_boxes(landmarks, aspect: float, scale: float = MOUTH_SCALE, smooth: int = 5) -> np.ndarray:
    """(T, 478, 2) landmarks (NaN rows = no face) -> (T, 4) boxes [cx, cy, w, h] in pixels."""
    from scipy.ndimage import median_filter

    L = np.asarray(landmarks, np.float64)[..., :2]
    ok = np.isfinite(L[:, list(MOUTH_40) + [33, 263]]).all(axis=(1, 2))
    if not ok.any():
        raise UserError("no face was found in any frame: the lip-sync metrics need a visible face")
    centre = np.full((len(L), 2), np.nan)
    width = np.full(len(L), np.nan)
    centre[ok] = L[ok][:, list(MOUTH_40)].mean(axis=1)
    width[ok] = scale * np.linalg.norm(L[ok, 263] - L[ok, 33], axis=-1)
    idx = np.arange(len(L))
    good = np.where(ok)[0]
    nearest = good[np.clip(np.searchsorted(good, idx), 0, len(good) - 1)]
    prev = good[np.clip(np.searchsorted(good, idx) - 1, 0, len(good) - 1)]
    use = np.where(np.abs(prev - idx) < np.abs(nearest - idx), prev, nearest)
    centre, width = centre[use], width[use]
    if smooth > 1 and len(L) >= smooth:
        centre = median_filter(centre, size=(smooth, 1), mode="nearest")
        width = median_filter(width, size=smooth, mode="nearest")
    return np.concatenate([centre, width[:, None], width[:, None] * aspect], axis=1)


def crop_boxes(frames, boxes, crop_h: int, crop_w: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames, (T, 4) boxes -> (T, crop_h, crop_w, 3) uint8 crops."""
    import cv2

    frames = np.asarray(frames)
    out = np.empty((len(frames), crop_h, crop_w, 3), np.uint8)
    for i, (f, (cx, cy, bw, bh)) in enumerate(zip(frames, boxes)):
        sx, sy = crop_w / bw, crop_h / bh
        M = np.array([[sx, 0, crop_w / 2 - sx * cx], [0, sy, crop_h / 2 - sy * cy]], np.float64)
        out[i] = cv2.warpAffine(np.ascontiguousarray(f), M, (crop_w, crop_h), flags=cv2.INTER_AREA,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def mouth_crops(frames, landmarks, crop_h: int, crop_w: int, scale: float = MOUTH_SCALE) -> np.ndarray:
    """Mouth crops (T, crop_h, crop_w, 3) uint8 of frames (T, H, W, 3) given their landmarks (T, 478, 2)."""
    frames = np.asarray(frames)
    if len(frames) != len(landmarks):
        raise UserError(f"{len(frames)} frames but {len(landmarks)} landmark rows: give one per frame")
    return crop_boxes(frames, mouth_boxes(landmarks, crop_h / crop_w, scale), crop_h, crop_w)


def video_windows(crops: np.ndarray, frames_per_window: int) -> np.ndarray:
    """(N, h, w, 3) uint8 crops -> (N - T + 1, T, 3, h, w) float32 in [0, 1] (window i = frames i..i+T-1)."""
    c = np.asarray(crops, np.float32) / 255.0
    c = np.transpose(c, (0, 3, 1, 2))
    n = len(c) - frames_per_window + 1
    if n < 1:
        raise UserError(f"video has {len(c)} frames, fewer than one sync window of {frames_per_window}: "
                        f"give a longer video")
    idx = np.arange(n)[:, None] + np.arange(frames_per_window)[None, :]
    return c[idx]


def audio_windows(mel_stream: np.ndarray, n_windows: int, frames_per_window: int, steps_per_frame: int = 2) -> np.ndarray:
    """(2N, M) mel stream -> (n_windows, T * steps, M): window i = steps 2i .. 2i + 2T - 1."""
    s = np.asarray(mel_stream, np.float32)
    steps = frames_per_window * steps_per_frame
    need = (n_windows - 1) * steps_per_frame + steps
    if len(s) < need:
        s = np.pad(s, ((0, need - len(s)), (0, 0)))
    idx = np.arange(n_windows)[:, None] * steps_per_frame + np.arange(steps)[None, :]
    return s[idx]


def clip_mel(audio, n_frames: int) -> np.ndarray:
    """The 50 Hz mel stream (2 n_frames, 80) of 16 kHz audio for a video of ``n_frames`` frames."""
    from talklib.audio.features import mel_stream

    return mel_stream(np.asarray(audio, np.float32), n_frames)
