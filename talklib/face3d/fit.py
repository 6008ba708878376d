"""Fit pose, identity and expression of the morphable head to 2D landmarks (the papers' 3DMM tracking).

Minimises the reprojection error of the model's 478 landmark vertices against detected landmarks
(mediapipe numbering, so the correspondence is by index), with Tikhonov priors on the coefficients:

    E = Σ_frames Σ_k ||Π(R S_k(F_id, F_exp) + t) - l_k||² / IOD²  +  λ_id ||F_id||²  +  λ_exp ||F_exp||²

where S = S̄ + B_id F_id + B_exp F_exp (DFA-NeRF Eq. 1). Identity is shared by all frames of a clip;
pose and expression are per frame. Optimised with L-BFGS (torch), CPU or GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from talklib.face3d.camera import apply_pose, project
from talklib.face3d.model import MorphableModel
from talklib.face3d.topology import N_LANDMARKS, N_MESH

N_NAMED = 12


def initial_distance(lmk2d: np.ndarray, focal: float, iod_m: float = 0.09) -> float:
    """Camera distance (m) at which the mean head's eye corners are as far apart as in ``lmk2d`` (478, 2)."""
    iod_px = float(np.linalg.norm(lmk2d[263] - lmk2d[33]))
    return focal * iod_m / max(iod_px, 1e-6)


def fit_landmarks(t: dict, lmk2d, c2w, focal: float, cx: float, cy: float, n_id: int = 40,
                  n_exp: int = 79, lambda_id: float = 1e-5, lambda_exp: float = 1e-5, iters: int = 60,
                  fit_id: bool = True, id_coeff=None, pose=None, init_pose=None) -> dict[str, np.ndarray]:
    """Fit B frames.

    t: ``MorphableModel.tensors()``; lmk2d (B, 478, 2) pixels; c2w (4, 4) or (B, 4, 4) OpenGL camera(s).
    id_coeff (100,): a known identity, kept fixed (``fit_id`` is then ignored); pose (B, 6): a known pose,
    kept fixed (only the expression is fitted: the second pass of ``talklib.prepare``, after the
    fitted poses are smoothed over time); init_pose (B, 6): where the pose search starts (default: the
    head at the origin, facing the camera).
    Returns pose (B, 6) (yaw, pitch, roll deg; t m), id (100,), exp (B, 79), err_px (B,) mean landmark error.
    """
    dt = torch.float64
    target = torch.as_tensor(np.asarray(lmk2d), dtype=dt)
    B = target.shape[0]
    c2w = torch.as_tensor(np.asarray(c2w), dtype=dt)
    if c2w.dim() == 2:
        c2w = c2w.expand(B, -1, -1)
    # only the landmark vertices of the model are fitted: its bases cut to them, in float64
    tt = {k: t[k][..., :N_LANDMARKS, :].to(dt) for k in ("mean", "id_basis", "exp_basis")}
    iod = (target[:, 263] - target[:, 33]).norm(dim=-1).clamp_min(1.0)           # (B,)
    start = pose if pose is not None else init_pose
    start = torch.zeros(B, 6, dtype=dt) if start is None else torch.as_tensor(np.asarray(start), dtype=dt)
    ang = (start[:, :3] / 10.0).clone().requires_grad_(pose is None)
    trans = (start[:, 3:] / 0.05).clone().requires_grad_(pose is None)
    if id_coeff is not None:
        idc = torch.as_tensor(np.asarray(id_coeff)[:n_id], dtype=dt)
        fit_id = False
    else:
        idc = torch.zeros(n_id, dtype=dt, requires_grad=True)
    expc = torch.zeros(B, n_exp, dtype=dt, requires_grad=True)
    use = list(range(N_LANDMARKS))
    params = ([ang, trans] if pose is None else []) + [expc] + ([idc] if fit_id else [])

    def full(idv, ev):
        i100 = torch.zeros(B, 100, dtype=dt)
        i100[:, :n_id] = idv[None]
        e79 = torch.zeros(B, 79, dtype=dt)
        e79[:, :n_exp] = ev
        return i100, e79

    if not fit_id:     # a fixed identity: its part of the shape (S̄ + B_id F_id) is computed once
        with torch.no_grad():
            i100, _ = full(idc, expc[:1])
            neutral = MorphableModel.shape(tt, i100[:1], torch.zeros(1, 79, dtype=dt))

    def shape(i100, e79):
        if fit_id:
            return MorphableModel.shape(tt, i100, e79)
        return neutral + torch.einsum("bk,kvc->bvc", e79, tt["exp_basis"])

    def energy():
        i100, e79 = full(idc, expc)
        verts = shape(i100, e79)
        pose = torch.cat([ang * 10.0, trans * 0.05], -1)
        pix, _ = project(apply_pose(verts, pose), c2w, focal, cx, cy)
        r = ((pix[:, use] - target[:, use]) / iod[:, None, None]) ** 2
        data = r.sum(-1).mean(-1).sum()
        named = expc[:, :N_NAMED]
        bounds = (torch.relu(-named) ** 2 + torch.relu(named - 1.0) ** 2).sum() * 10.0
        return data + lambda_id * (idc ** 2).sum() * B + lambda_exp * (expc ** 2).sum() + bounds

    # stage 1: rigid pose only; stage 2: everything
    stages = (([ang, trans], iters // 2), (params, iters)) if pose is None else ((params, iters),)
    for stage_params, n in stages:
        opt = torch.optim.LBFGS(stage_params, lr=1.0, max_iter=n, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-10, tolerance_change=1e-12)

        def closure():
            opt.zero_grad()
            e = energy()
            e.backward()
            return e

        opt.step(closure)
    with torch.no_grad():
        i100, e79 = full(idc, expc)
        pose = torch.cat([ang * 10.0, trans * 0.05], -1)
        verts = shape(i100, e79)
        pix, _ = project(apply_pose(verts, pose), c2w, focal, cx, cy)
        err = (pix - target).norm(dim=-1)[:, :N_MESH].mean(-1)
    return {"pose": pose.numpy().astype(np.float32), "id": i100[0].numpy().astype(np.float32),
            "exp": e79.clamp(min=-3, max=3).numpy().astype(np.float32), "err_px": err.numpy().astype(np.float32)}


def fit_photo(t: dict, image, fov_deg: float = 22.0, detector=None) -> dict:
    """Fit the head to one photo (H, W, 3) uint8: detect landmarks, guess the camera, fit.

    The camera is a pinhole with ``fov_deg`` horizontal field of view, centred; the head starts at the
    distance that matches its eye-corner spacing. Returns ``fit_landmarks``'s dict plus ``lmk2d``
    (478, 2) detected, ``c2w`` (4, 4), ``focal``, ``cx``, ``cy``. UserError when no face is found.
    """
    from talklib.errors import UserError
    from talklib.face3d.camera import focal_for, orbit_camera
    from talklib.face3d.landmarks import LandmarkDetector

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise UserError(f"the photo has shape {img.shape}, not (H, W, 3): pass an RGB image")
    det = detector or LandmarkDetector()
    try:
        lmk = det(img)
    finally:
        if detector is None:
            det.close()
    if lmk is None:
        raise UserError("no face found in the photo: pass a photo with a clearly visible, roughly frontal face")
    h, w = img.shape[:2]
    focal = focal_for(w, fov_deg)
    c2w = orbit_camera(0.0, 0.0, initial_distance(lmk, focal))
    out = fit_landmarks(t, lmk[None], c2w, focal, w / 2.0, h / 2.0, fit_id=True)
    out.update({"lmk2d": lmk, "c2w": c2w, "focal": focal, "cx": w / 2.0, "cy": h / 2.0})
    return out
