"""Head-pose distances D-Rot / D-Pos (MakeItTalk's meters, DFA-NeRF Table 4).

``d_rot(pred, ref)``: mean absolute difference of (yaw, pitch, roll) in degrees; ``d_pos``: mean L2
distance of the head positions (in the units given). ``relative=True`` divides by the reference's mean
absolute deviation from its own mean (a percentage, as DFA-NeRF reports them).

For videos, ``pose_from_landmarks`` estimates each frame's head rotation and position by aligning its
3D mediapipe landmarks (rigid points: forehead, nose, eye corners, cheeks) to a template (Kabsch);
rotations are then Euler angles relative to that template.
"""

from __future__ import annotations

import numpy as np

from talklib.errors import UserError

#: Rigid face points (forehead, nose bridge/tip, eye corners, cheekbones, chin area excluded).
RIGID = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 234, 454, 127, 356, 70, 300, 105, 334)


def _check(pred, ref, cols: int) -> tuple[np.ndarray, np.ndarray]:
    p, r = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if p.shape != r.shape or p.ndim != 2 or p.shape[1] != cols:
        raise UserError(f"pose arrays have shapes {p.shape} and {r.shape}: give two (T, {cols}) arrays of one length")
    return p, r


def d_rot(pred_rot_deg, ref_rot_deg, relative: bool = False) -> float:
    """Mean |difference| of Euler angles (T, 3) in degrees (angle differences wrapped to ±180)."""
    p, r = _check(pred_rot_deg, ref_rot_deg, 3)
    diff = (p - r + 180.0) % 360.0 - 180.0
    d = float(np.mean(np.abs(diff)))
    if relative:
        return 100.0 * d / max(float(np.mean(np.abs(r - r.mean(axis=0)))), 1e-9)
    return d


def d_pos(pred_pos, ref_pos, relative: bool = False) -> float:
    """Mean L2 distance between positions (T, 3)."""
    p, r = _check(pred_pos, ref_pos, 3)
    d = float(np.mean(np.linalg.norm(p - r, axis=1)))
    if relative:
        return 100.0 * d / max(float(np.mean(np.linalg.norm(r - r.mean(axis=0), axis=1))), 1e-9)
    return d


def rotation_to_euler(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices R = Ry(yaw) @ Rx(pitch) @ Rz(roll) -> (..., 3) degrees (yaw, pitch, roll)."""
    R = np.asarray(R, np.float64)
    pitch = np.arcsin(np.clip(-R[..., 1, 2], -1.0, 1.0))
    yaw = np.arctan2(R[..., 0, 2], R[..., 2, 2])
    roll = np.arctan2(R[..., 1, 0], R[..., 1, 1])
    return np.degrees(np.stack([yaw, pitch, roll], axis=-1))


def euler_to_rotation(angles_deg) -> np.ndarray:
    """(..., 3) degrees (yaw, pitch, roll) -> (..., 3, 3) R = Ry(yaw) @ Rx(pitch) @ Rz(roll)."""
    a = np.radians(np.asarray(angles_deg, np.float64))
    y, p, r = a[..., 0], a[..., 1], a[..., 2]
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    Ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    Rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    Rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return Ry @ Rx @ Rz


def kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (3, 3) and translation t (3,) minimising |R src_i + t - dst_i| for points (K, 3)."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    H = (src - cs).T @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    return R, cd - R @ cs


def pose_from_landmarks(landmarks3d, template=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame head pose from 3D landmarks (T, 478, 3) -> (rot_deg (T, 3), pos (T, 3)).

    ``template``: (478, 3) points the rotation is measured against (default: the first valid frame).
    Position is the centroid of the rigid points. Frames with NaN landmarks give NaN rows.
    """
    L = np.asarray(landmarks3d, np.float64)
    if L.ndim != 3 or L.shape[2] != 3:
        raise UserError(f"3D landmarks have shape {L.shape}: give (T, 478, 3) (detect with with_z=True)")
    idx = list(RIGID)
    if template is None:
        ok = np.where(np.isfinite(L[:, idx]).all(axis=(1, 2)))[0]
        if len(ok) == 0:
            raise UserError("no frame has a face: head pose needs visible faces")
        template = L[ok[0]]
    tmpl = np.asarray(template, np.float64)[idx]
    rot = np.full((len(L), 3), np.nan)
    pos = np.full((len(L), 3), np.nan)
    for i, frame in enumerate(L):
        pts = frame[idx]
        if not np.isfinite(pts).all():
            continue
        R, _ = kabsch(tmpl, pts)
        rot[i] = rotation_to_euler(R)
        pos[i] = pts.mean(axis=0)
    return rot, pos
