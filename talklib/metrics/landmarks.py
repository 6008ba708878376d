"""Landmark distances between a predicted and a reference video (mediapipe FaceMesh numbering).

Landmarks come from ``talklib.face3d.landmarks.LandmarkDetector``: (T, 478, 2) pixels. Index sets:

- ``MOUTH_40``: the 40 lip-contour points of mediapipe's ``FACEMESH_LIPS`` (outer + inner lip line),
  the mediapipe counterpart of the 20 mouth points 48-67 of the 68-point scheme (RAD-NeRF's LMD);
- ``LIPS_80``: the 4 lip contours of the mesh (outer, semi-outer, semi-inner, inner; 20 points each).
  NeRF-3DTalker's LMD-79 follows NeRF-AD, which does not publish its 79 indices; we take this lip
  region of the mesh, whose 80 points are as close as the mesh gets, and report it as ``LMD-79``;
- ``FACE_468``: every mesh point except the irises.

Definitions (pixels of the video given; lower is better):

- M-LMD (S3D-NeRF, RAD-NeRF's meter): mouth points mean-centred per frame, mean L2 distance per point,
  averaged over frames — measures mouth *shape*, not its position;
- LMD-79: the same over ``LIPS_80``;
- F-LMD (S3D-NeRF): all face points, not centred, mean L2 distance — shape and position of the face.
"""

from __future__ import annotations

import numpy as np

from talklib.errors import UserError

LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
LIPS_SEMI_OUTER = (76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 408, 304, 303, 302, 11, 72, 73, 74, 184)
LIPS_SEMI_INNER = (62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 407, 272, 271, 268, 12, 38, 41, 42, 183)
MOUTH_40 = LIPS_OUTER + LIPS_INNER
LIPS_80 = LIPS_OUTER + LIPS_SEMI_OUTER + LIPS_SEMI_INNER + LIPS_INNER
FACE_468 = tuple(range(468))


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, r = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if p.shape != r.shape:
        raise UserError(f"landmark arrays differ in shape {p.shape} vs {r.shape}: compare videos of one length")
    if p.ndim != 3 or p.shape[1] < 468:
        raise UserError(f"landmarks have shape {p.shape}: give (T, 478, 2) mediapipe landmarks")
    return p, r


def landmark_distance(pred, ref, indices, centre: bool) -> float:
    """Mean over frames and points of the L2 distance between ``pred`` and ``ref`` landmarks (T, K, 2)
    at ``indices``; with ``centre`` each frame's points are first shifted to zero mean.
    Frames where either side is NaN (no face found) are skipped."""
    p, r = _check(pred, ref)
    idx = list(indices)
    p, r = p[:, idx, :2], r[:, idx, :2]
    ok = np.isfinite(p).all(axis=(1, 2)) & np.isfinite(r).all(axis=(1, 2))
    if not ok.any():
        raise UserError("no frame has a face in both videos: landmark distances need visible faces")
    p, r = p[ok], r[ok]
    if centre:
        p = p - p.mean(axis=1, keepdims=True)
        r = r - r.mean(axis=1, keepdims=True)
    return float(np.linalg.norm(p - r, axis=-1).mean())


def m_lmd(pred, ref) -> float:
    """Mouth landmark distance over ``MOUTH_40``, mean-centred (S3D-NeRF M-LMD / RAD-NeRF LMD)."""
    return landmark_distance(pred, ref, MOUTH_40, centre=True)


def lmd_79(pred, ref) -> float:
    """Lip-region landmark distance over ``LIPS_80``, mean-centred (NeRF-3DTalker's LMD-79)."""
    return landmark_distance(pred, ref, LIPS_80, centre=True)


def f_lmd(pred, ref) -> float:
    """Face landmark distance over all 468 mesh points, not centred (S3D-NeRF F-LMD)."""
    return landmark_distance(pred, ref, FACE_468, centre=False)


def detect_video_landmarks(frames, with_z: bool = False, progress: bool = False) -> np.ndarray:
    """Landmarks of every frame (T, H, W, 3) -> (T, 478, 2|3) pixels; NaN rows where no face is found."""
    from talklib.face3d.landmarks import LandmarkDetector

    frames = np.asarray(frames)
    out = np.full((len(frames), 478, 3 if with_z else 2), np.nan)
    it = range(len(frames))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="landmarks", leave=False)
    with LandmarkDetector() as det:
        for i in it:
            pts = det(frames[i], with_z=with_z)
            if pts is not None:
                out[i] = pts
    return out
