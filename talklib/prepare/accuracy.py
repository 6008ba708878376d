"""How well ``prepare`` recovers the truth, on a synthetic clip made into a phone-style video.

talklib knows what a real video never tells: ``compare(prepared, truth, letterbox)`` scores a folder
that ``prepare`` made from ``phone_style(truth's frames)`` against the synthetic clip's ground truth:

- ``rot_err_deg``: per frame, the angle of R_fit R_true^T (the geodesic distance of the head rotations,
  both seen from a camera looking straight at the head); median and 95th percentile;
- ``trans_err_mm``: per frame, the distance between the fitted and true head translations after each
  curve's mean is removed (the absolute depth of a crop depends on its assumed field of view);
- ``exp_corr``: per named expression component that moves in the truth, the Pearson correlation of the
  fitted and true curves (jaw_open, lips_part, the blinks, ...), and their mean;
- ``lmk_nme``: the detected landmarks against the true projected ones mapped into the crop, mean distance
  over the inter-ocular distance (the 68-point NME convention applied to mediapipe's 478 points).
"""

from __future__ import annotations

import numpy as np

from talklib.data.dataset import EXP_NAMES


def rotation_error_deg(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """(T,) angle in degrees between the head rotations of two (T, 6) pose arrays."""
    import torch

    from talklib.face3d.camera import pose_matrix

    Ra = pose_matrix(torch.as_tensor(pose_a, dtype=torch.float64))[:, :3, :3]
    Rb = pose_matrix(torch.as_tensor(pose_b, dtype=torch.float64))[:, :3, :3]
    tr = torch.einsum("tij,tij->t", Ra, Rb)
    return np.degrees(np.arccos(np.clip((tr.numpy() - 1) / 2, -1, 1)))


def compare(prepared, truth, letterbox: tuple[float, float, float]) -> dict:
    """Scores (see the module docstring). prepared, truth: ``Clip``s with the same frames (nothing dropped);
    letterbox (scale, x offset, y offset): truth pixel -> source video pixel."""
    from talklib.face3d.landmarks import inter_ocular_distance

    n = min(prepared.n_frames, truth.n_frames)
    p_pose, t_pose = prepared.pose()[:n], truth.pose()[:n]
    rot = rotation_error_deg(p_pose, t_pose)
    dt = (p_pose[:, 3:] - p_pose[:, 3:].mean(0)) - (t_pose[:, 3:] - t_pose[:, 3:].mean(0))
    trans = np.linalg.norm(dt, axis=1) * 1000
    pe, te = prepared.exp()[:n], truth.exp()[:n]
    corr = {}
    for k, name in enumerate(EXP_NAMES):
        if te[:, k].std() > 1e-3 and pe[:, k].std() > 1e-6:
            corr[name] = float(np.corrcoef(pe[:, k], te[:, k])[0, 1])
    crop = prepared.meta["prepare"]["crop"]
    s, ox, oy = letterbox
    size = prepared.size[1]
    true_src = truth.landmarks2d("front")[:n] * s + np.array([ox, oy])
    true_crop = (true_src - np.array([crop["x0"], crop["y0"]])) * (size / crop["side"])
    det = prepared.landmarks2d("front")[:n]
    nme = np.linalg.norm(det - true_crop, axis=-1).mean(-1) / inter_ocular_distance(true_crop)
    return {"frames": int(n), "rot_err_deg_median": float(np.median(rot)), "rot_err_deg_p95": float(np.percentile(rot, 95)),
            "trans_err_mm_median": float(np.median(trans)), "exp_corr": corr,
            "exp_corr_mean": float(np.mean(list(corr.values()))) if corr else float("nan"),
            "lmk_nme_median": float(np.median(nme)), "fit_err_px_median": float(prepared.meta["prepare"]["fit_err_px_median"])}


def letterbox_of(truth_size: int, width: int = 720, height: int = 1280) -> tuple[float, float, float]:
    """(scale, x offset, y offset) of ``phone_style``'s letterboxing of a square ``truth_size`` picture."""
    s = width / truth_size
    return s, 0.0, (height - truth_size * s) / 2
