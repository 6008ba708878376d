"""The morphable model fitted to a whole video: identity, smoothed head pose, expression, albedo, light.

Three passes over the landmarks (``talklib.face3d.fit.fit_landmarks``, the papers' 3DMM tracking):

1. identity f_id on up to 32 key frames spread over the video (pose, expression and identity together);
2. pose and expression of every frame, identity fixed;
3. the pose curves smoothed over time (a Gaussian of ``smooth`` frames, within each kept stretch of the
   video: the peers' most reported artefact is a jittering, shaking head), and the expression refitted
   under the smoothed pose, so that the expression absorbs what the smoothing moved.

Appearance (Eq. 1 of NeRF-3DTalker: f_alb, f_illu) is then solved in closed form, because the model's
colour is linear in each: colour = texture x (1 + B_alb f_alb) x (SH(n) . f_illu). ``Appearance``
gathers, per frame, the colours of a fixed number of skin pixels of the fitted mesh with what multiplies
f_illu and f_alb there; ``solve`` fits f_illu per frame (9 SH x RGB, ridge least squares), then f_alb
(one for the clip) on the key frames, then f_illu again with that albedo.

The camera is talklib's (OpenGL, fixed, 0.6 m in front of the world origin, ``fov_deg`` horizontal field
of view for the crop); the head moves, as in the synthetic speaker, and the dataset's
``transform_matrix`` is the camera in the head's frame (AD-NeRF).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talklib.face3d.camera import apply_pose, focal_for, orbit_camera, project
from talklib.face3d.fit import fit_landmarks, initial_distance
from talklib.face3d.model import MorphableModel, sh_basis
from talklib.face3d.raster import interpolate, rasterize
from talklib.face3d.render import vertex_normals

CAMERA_DISTANCE_M = 0.6
FOV_DEG = 22.0
#: landmarks are fitted in the coordinates of a crop this large, whatever the dataset's size
FIT_SIZE = 128


@dataclass
class Camera:
    focal: float
    cx: float
    cy: float
    size: int
    c2w_world: np.ndarray


def camera_for(size: int, fov_deg: float = FOV_DEG) -> Camera:
    return Camera(focal_for(size, fov_deg), size / 2.0, size / 2.0, int(size),
                  orbit_camera(0.0, 0.0, CAMERA_DISTANCE_M))


def smooth_pose(pose: np.ndarray, sigma: float, segments: list[tuple[int, int]]) -> np.ndarray:
    """Gaussian smoothing of (T, 6) pose curves over time, each [start, end) segment on its own."""
    from scipy.ndimage import gaussian_filter1d

    out = pose.astype(np.float64).copy()
    if sigma <= 0:
        return out.astype(np.float32)
    for a, b in segments:
        if b - a > 1:
            out[a:b] = gaussian_filter1d(out[a:b], sigma, axis=0, mode="nearest")
    return out.astype(np.float32)


def fit_geometry(t: dict, lmk: np.ndarray, cam: Camera, segments: list[tuple[int, int]], smooth: float = 1.5,
                 keyframes: int = 32, iters: int = 40, chunk: int = 500, progress: bool = True) -> dict:
    """Fit (T, 478, 2) crop-pixel landmarks: returns id (100,), pose (T, 6) smoothed, pose_raw (T, 6),
    exp (T, 79), err_px (T,) mean landmark error of the final fit."""
    from tqdm.auto import tqdm

    if cam.size != FIT_SIZE:     # the same fit at 128 px: the pose does not depend on the pixel scale, and
        s = FIT_SIZE / cam.size  # so the optimiser's tolerances act alike whatever the dataset's size
        small = Camera(cam.focal * s, cam.cx * s, cam.cy * s, FIT_SIZE, cam.c2w_world)
        out = fit_geometry(t, lmk * s, small, segments, smooth, keyframes, iters, chunk, progress)
        out["err_px"] = out["err_px"] / s
        return out
    T = len(lmk)
    d = initial_distance(np.median(lmk, 0), cam.focal)
    init = np.zeros((T, 6), np.float32)
    init[:, 5] = CAMERA_DISTANCE_M - d                   # the head where its eye spacing puts it
    key = np.unique(np.linspace(0, T - 1, min(keyframes, T)).round().astype(int))
    ident = fit_landmarks(t, lmk[key], cam.c2w_world, cam.focal, cam.cx, cam.cy, init_pose=init[key],
                          iters=2 * iters)["id"]
    pose_raw = np.zeros((T, 6), np.float32)
    with tqdm(total=2 * T, unit="frame", desc="3DMM fit", disable=not progress, leave=False) as bar:
        for a in range(0, T, chunk):
            b = min(T, a + chunk)
            pose_raw[a:b] = fit_landmarks(t, lmk[a:b], cam.c2w_world, cam.focal, cam.cx, cam.cy, id_coeff=ident,
                                          init_pose=init[a:b], iters=iters)["pose"]
            bar.update(b - a)
        pose = smooth_pose(pose_raw, smooth, segments)
        exp = np.zeros((T, 79), np.float32)
        err = np.zeros(T, np.float32)
        for a in range(0, T, chunk):
            b = min(T, a + chunk)
            r = fit_landmarks(t, lmk[a:b], cam.c2w_world, cam.focal, cam.cx, cam.cy, id_coeff=ident, pose=pose[a:b],
                              iters=iters)
            exp[a:b], err[a:b] = r["exp"], r["err_px"]
            bar.update(b - a)
    return {"id": ident, "pose": pose, "pose_raw": pose_raw, "exp": exp, "err_px": err}


def _posed(t: dict, ident: np.ndarray, exp: np.ndarray, pose: np.ndarray, cam: Camera):
    """World vertices (B, V, 3), their pixels (B, V, 2) and depths (B, V) of the fitted mesh of B frames."""
    B = len(exp)
    with torch.no_grad():
        idc = torch.as_tensor(np.repeat(ident[None], B, 0))
        verts = apply_pose(MorphableModel.shape(t, idc, torch.as_tensor(exp)), torch.as_tensor(pose))
        c2w = torch.as_tensor(cam.c2w_world, dtype=torch.float32).expand(B, -1, -1)
        pix, depth = project(verts, c2w, cam.focal, cam.cx, cam.cy)
    return verts, pix, depth


def project_fit(t: dict, ident: np.ndarray, exp: np.ndarray, pose: np.ndarray, cam: Camera) -> dict:
    """The fitted mesh of B frames projected: every vertex's pixel (B, V, 2), the 478 landmarks (B, 478, 2)
    and their 3D positions in the world frame (B, 478, 3)."""
    verts, pix, _ = _posed(t, ident, exp, pose, cam)
    return {"pix": pix.numpy(), "lmk2d": pix[:, :478].numpy(), "lmk3d": verts[:, :478].numpy()}


def silhouettes(pix: np.ndarray, faces: np.ndarray, size: int) -> np.ndarray:
    """(B, size, size) bool: the pixels the mesh covers (the union of its projected triangles; what a
    rasterizer's coverage is), filled with OpenCV at 1/16 pixel precision, pixel centres at +0.5."""
    import cv2

    out = np.zeros((len(pix), size, size), np.uint8)
    tri = np.ascontiguousarray(np.round((pix[:, faces] - 0.5) * 16), dtype=np.int32)    # (B, F, 3, 2)
    for b in range(len(pix)):
        for poly in tri[b]:
            cv2.fillConvexPoly(out[b], poly, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def rasterize_fit(t: dict, ident: np.ndarray, exp: np.ndarray, pose: np.ndarray, cam: Camera) -> dict:
    """The fitted mesh of B frames rasterized at the camera's size: face index (B, S, S) (-1 = none),
    barycentrics (B, S, S, 3) and the vertex normals (B, V, 3), what ``Appearance.add`` reads."""
    verts, pix, depth = _posed(t, ident, exp, pose, cam)
    with torch.no_grad():
        face, bary, _ = rasterize(pix, depth, t["faces"], cam.size, cam.size)
        normals = vertex_normals(verts, t["faces"])
    return {"face": face, "bary": bary, "normals": normals}


class Appearance:
    """Colour samples of the fitted mesh, gathered frame by frame, for the closed-form f_alb / f_illu fit."""

    def __init__(self, t: dict, samples: int = 1024, seed: int = 0):
        self.t = t
        self.samples = int(samples)
        self.rng = np.random.default_rng(seed)
        self.rows: dict[int, dict] = {}
        self.mouth = t["mouth_face"]

    def add(self, frames: np.ndarray, geo: dict, index) -> None:
        """frames (B, S, S, 3) uint8, ``rasterize_fit``'s result for them, and their frame numbers (B,)."""
        t = self.t
        face, bary = geo["face"], geo["bary"]
        uv = interpolate(t["uv"][None].expand(len(frames), -1, -1), face=face, bary=bary, faces=t["faces"])
        tex = torch.nn.functional.grid_sample(t["texture"].permute(2, 0, 1)[None].expand(len(frames), -1, -1, -1),
                                              uv * 2 - 1, mode="bilinear", padding_mode="border",
                                              align_corners=False).permute(0, 2, 3, 1)
        nrm = torch.nn.functional.normalize(interpolate(geo["normals"], t["faces"], face, bary), dim=-1)
        skin = (face >= 0) & ~self.mouth[face.clamp(min=0)]
        for k in range(len(frames)):
            ij = torch.nonzero(skin[k]).numpy()
            if len(ij) == 0:
                continue
            pick = ij[self.rng.choice(len(ij), min(self.samples, len(ij)), replace=False)]
            i, j = pick[:, 0], pick[:, 1]
            self.rows[int(index[k])] = ({"rgb": frames[k, i, j].astype(np.float32) / 255.0,
                              "tex": tex[k, i, j].numpy(), "sh": sh_basis(nrm[k, i, j]).numpy(),
                              "face": face[k, i, j].numpy(), "bary": bary[k, i, j].numpy()})

    def _gain_basis(self, row: dict) -> np.ndarray:
        """(n, 100, 3) B_alb at the samples (barycentric mix of the corners' basis vectors)."""
        corners = self.t["faces"][torch.as_tensor(row["face"])].numpy()            # (n, 3)
        basis = self.t["alb_basis"].numpy()                                         # (100, V, 3)
        return np.einsum("nc,kncd->nkd", row["bary"], basis[:, corners])

    def solve(self, key: np.ndarray, T: int, ridge_illu: float = 1e-3, ridge_alb: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
        """f_alb (100,) for the clip (fitted on the ``key`` frames that have samples) and f_illu (T, 27) per
        frame of ``T`` (frames without samples: interpolated in time)."""
        ok = sorted(self.rows)
        if not ok:
            raise ValueError("no colour samples: the fitted mesh covers no pixel of any sampled frame")

        def illu_of(alb: np.ndarray) -> np.ndarray:
            L = np.zeros((T, 3, 9), np.float64)
            for k in ok:
                r = self.rows[k]
                gain = 1.0 + np.einsum("k,nkd->nd", alb, self._gain_basis(r)) if alb.any() else 1.0
                base = r["tex"] * gain                                               # (n, 3)
                for c in range(3):
                    A = base[:, c:c + 1] * r["sh"]                                   # (n, 9)
                    L[k, c] = np.linalg.solve(A.T @ A + ridge_illu * np.eye(9), A.T @ r["rgb"][:, c])
            if len(ok) < T:     # frames without samples: light interpolated in time between sampled frames
                flat = L[ok].reshape(len(ok), -1)
                L = np.stack([np.interp(np.arange(T), ok, flat[:, c]) for c in range(flat.shape[1])], 1)
                L = L.reshape(T, 3, 9)
            return L

        L = illu_of(np.zeros(100))
        AtA, Atb = np.zeros((100, 100)), np.zeros(100)
        for k in (k for k in key if k in self.rows):
            r = self.rows[k]
            shading = np.einsum("ns,cs->nc", r["sh"], L[k])      # (n, 3)
            M = np.einsum("nkd,nd->nkd", self._gain_basis(r), r["tex"] * shading)   # (n, 100, 3)
            resid = r["rgb"] - r["tex"] * shading
            A = M.transpose(0, 2, 1).reshape(-1, 100)
            AtA += A.T @ A
            Atb += A.T @ resid.reshape(-1)
        alb = np.linalg.solve(AtA + ridge_alb * np.eye(100), Atb)
        L = illu_of(alb)
        return alb.astype(np.float32), L.reshape(T, 27).astype(np.float32)
