"""Eye blinks per second from the eye aspect ratio (DFA-NeRF's blinks/s).

Eye aspect ratio (Soukupová & Čech 2016) on six mediapipe points per eye (p1, p4 the corners,
p2/p6 and p3/p5 the lid pairs): EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|); averaged over both eyes.
A blink is a run of at least ``min_frames`` frames whose EAR is below ``ratio`` x the clip's open-eye
level (its 90th percentile); blinks/s = number of runs / duration. A relative threshold makes the
count independent of the face's size and of how wide a person's eyes are.
"""

from __future__ import annotations

import numpy as np

from talklib.errors import UserError

RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # p1..p6
LEFT_EYE = (362, 385, 387, 263, 373, 380)


def eye_aspect_ratio(landmarks) -> np.ndarray:
    """(T, 478, 2|3) landmarks -> (T,) mean EAR of both eyes (NaN where landmarks are NaN).

    Also takes the 68 3DMM landmarks (T, 68, 2|3) of ``face3d.topology.LANDMARKS_68``, whose eye points 36..47
    are the same twelve mesh points in the same order (DFA-NeRF's landmark attributes, notebook 08)."""
    p = np.asarray(landmarks, np.float64)[..., :2]
    if p.ndim != 3 or (p.shape[1] < 468 and p.shape[1] != 68):
        raise UserError(f"landmarks have shape {p.shape}: give (T, 478, 2) mediapipe landmarks or (T, 68, 2|3) "
                        "3DMM landmarks (talklib.face3d.topology.LANDMARKS_68)")
    eyes = (RIGHT_EYE, LEFT_EYE) if p.shape[1] != 68 else (tuple(range(36, 42)), tuple(range(42, 48)))
    ears = []
    for eye in eyes:
        q = p[:, list(eye)]
        num = np.linalg.norm(q[:, 1] - q[:, 5], axis=-1) + np.linalg.norm(q[:, 2] - q[:, 4], axis=-1)
        den = 2.0 * np.linalg.norm(q[:, 0] - q[:, 3], axis=-1)
        ears.append(num / np.maximum(den, 1e-9))
    return 0.5 * (ears[0] + ears[1])


def blink_events(ear, ratio: float = 0.6, min_frames: int = 1) -> list[tuple[int, int]]:
    """Closed-eye runs ``[(start, end_exclusive), ...]`` of an EAR series (T,); NaN frames count as open."""
    e = np.asarray(ear, np.float64)
    finite = e[np.isfinite(e)]
    if finite.size == 0:
        return []
    open_level = np.percentile(finite, 90)
    closed = np.where(np.isfinite(e), e < ratio * open_level, False)
    runs, start = [], None
    for i, c in enumerate(np.append(closed, False)):
        if c and start is None:
            start = i
        elif not c and start is not None:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
    return runs


def blinks_per_second(ear, fps: float = 25.0, ratio: float = 0.6, min_frames: int = 1) -> float:
    """Blink rate of an EAR series (T,) at ``fps``: number of closed-eye runs / duration in seconds."""
    e = np.asarray(ear)
    if e.ndim != 1 or len(e) == 0:
        raise UserError(f"EAR series has shape {e.shape}: give one value per frame")
    return len(blink_events(e, ratio, min_frames)) / (len(e) / float(fps))


def eye_box(landmarks, pad: float = 0.5) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of a box around both eyes of (T, 478, 2) landmarks (x, y pixels) over all
    frames, grown by ``pad`` times the eyes' height on every side: the eye region of the disentangled-audio
    NeRF's patch comparison (its Fig. 2 and 3)."""
    p = np.asarray(landmarks, np.float64)[..., :2][:, list(RIGHT_EYE + LEFT_EYE)].reshape(-1, 2)
    p = p[np.isfinite(p).all(1)]
    if len(p) == 0:
        raise UserError("no eye landmarks: give (T, 478, 2) mediapipe landmarks of a visible face")
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    m = pad * max(y1 - y0, 1.0)
    return int(max(0, y0 - m)), int(np.ceil(y1 + m)), int(max(0, x0 - m)), int(np.ceil(x1 + m))
