"""Render the morphable head: RGB over a background, alpha, depth, 2D/3D landmarks.

Colour = photo texture x albedo gain x SH irradiance (NeRF-3DTalker's f_alb and f_illu); the mouth
cavity is a dark constant colour. Anti-aliasing by supersampling (``ssaa``), averaged down.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talklib.face3d.camera import apply_pose, project
from talklib.face3d.model import MorphableModel, shade
from talklib.face3d.raster import interpolate, rasterize
from talklib.face3d.topology import N_LANDMARKS

MOUTH_COLOUR = (0.22, 0.07, 0.07)


def incident_faces(faces: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """(V, D) the faces around each vertex, padded with F (an all-zero row of face attributes).

    A vertex lists the faces with it as corner 0 in ascending order, then corner 1, then corner 2: the
    order in which ``index_add_`` over ``faces[:, 0]``, ``faces[:, 1]``, ``faces[:, 2]`` adds them on the CPU.
    """
    n_faces = faces.shape[0]
    flat = faces.t().reshape(-1)                             # entry k * F + f is corner k of face f
    order = torch.sort(flat, stable=True).indices
    vert = flat[order]
    counts = torch.bincount(flat, minlength=n_vertices)
    first = torch.cumsum(counts, 0) - counts
    slot = torch.arange(flat.numel(), device=faces.device) - first[vert]
    out = torch.full((n_vertices, int(counts.max())), n_faces, dtype=torch.int64, device=faces.device)
    out[vert, slot] = order % n_faces
    return out


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals (B, V, 3) of counter-clockwise faces.

    On the CPU the face normals are summed with ``index_add_``; elsewhere (a GPU's ``index_add_`` adds
    with atomics, in a different order on every run) by a gather over ``incident_faces`` in the same
    order, so a GPU build is deterministic too.
    """
    v0, v1, v2 = verts[:, faces[:, 0]], verts[:, faces[:, 1]], verts[:, faces[:, 2]]
    fn = torch.cross(v1 - v0, v2 - v0, dim=-1)
    if verts.device.type != "cpu":
        return F.normalize(_sum_incident(fn, incident_faces(faces, verts.shape[1])), dim=-1, eps=1e-12)
    n = torch.zeros_like(verts)
    for k in range(3):
        n.index_add_(1, faces[:, k], fn)
    return F.normalize(n, dim=-1, eps=1e-12)


def _sum_incident(face_attr: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
    """Per-vertex sums (B, V, C) of face attributes (B, F, C) over ``incident_faces`` (V, D), in its order."""
    padded = torch.cat([face_attr, face_attr.new_zeros(face_attr.shape[0], 1, face_attr.shape[2])], 1)
    n = padded.new_zeros(face_attr.shape[0], incident.shape[0], face_attr.shape[2])
    for j in range(incident.shape[1]):
        n = n + padded[:, incident[:, j]]
    return n


def render(t: dict, id_coeff: torch.Tensor, exp_coeff: torch.Tensor, alb_coeff: torch.Tensor,
           illu: torch.Tensor, pose: torch.Tensor, c2w: torch.Tensor, focal: float, cx: float, cy: float,
           height: int, width: int, background: torch.Tensor | None = None, ssaa: int = 1) -> dict:
    """Render B frames of the head.

    t: ``MorphableModel.tensors()``; id_coeff (B, 100), exp_coeff (B, 79), alb_coeff (B, 100),
    illu (B, 27), pose (B, 6) (yaw, pitch, roll deg; t metres), c2w (B, 4, 4) OpenGL world cameras,
    background (H, W, 3) float in [0, 1] or None (black).
    Returns rgb (B, H, W, 3) in [0, 1], alpha (B, H, W), depth (B, H, W) (0 = background),
    lmk2d (B, 478, 2) pixels, lmk3d (B, 478, 3) world metres, lmk_depth (B, 478).
    """
    verts_h = MorphableModel.shape(t, id_coeff, exp_coeff)
    verts = apply_pose(verts_h, pose)
    pix, depth = project(verts, c2w, focal, cx, cy)
    s = int(ssaa)
    pix_s = pix * s
    face, bary, zbuf = rasterize(pix_s, depth, t["faces"], height * s, width * s)
    faces = t["faces"]
    B = verts.shape[0]
    uv = interpolate(t["uv"][None].expand(B, -1, -1), faces, face, bary)          # (B, Hs, Ws, 2)
    grid = uv * 2.0 - 1.0
    tex = t["texture"].permute(2, 0, 1)[None].expand(B, -1, -1, -1)
    colour = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    colour = colour.permute(0, 2, 3, 1)
    gain = interpolate(MorphableModel.albedo_gain(t, alb_coeff), faces, face, bary)
    normals = F.normalize(interpolate(vertex_normals(verts, faces), faces, face, bary), dim=-1, eps=1e-12)
    rgb = (colour * gain * shade(normals, illu).clamp_min(0.0)).clamp(0.0, 1.0)
    mouth = t["mouth_face"][face.clamp(min=0)] & (face >= 0)
    rgb = torch.where(mouth[..., None], torch.tensor(MOUTH_COLOUR, dtype=rgb.dtype, device=rgb.device), rgb)
    alpha = (face >= 0).to(rgb.dtype)
    if s > 1:
        rgb_a = F.avg_pool2d((rgb * alpha[..., None]).permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)
        alpha = F.avg_pool2d(alpha[:, None], s)[:, 0]
        rgb = rgb_a / alpha[..., None].clamp_min(1e-6)
        zsum = F.avg_pool2d(zbuf[:, None], s)[:, 0]
        zbuf = torch.where(alpha > 0, zsum / alpha.clamp_min(1e-6), torch.zeros_like(zsum))
    if background is None:
        background = torch.zeros(height, width, 3, dtype=rgb.dtype, device=rgb.device)
    out_rgb = rgb * alpha[..., None] + background[None] * (1.0 - alpha[..., None])
    return {"rgb": out_rgb.clamp(0, 1), "alpha": alpha, "depth": zbuf, "lmk2d": pix[:, :N_LANDMARKS],
            "lmk3d": verts[:, :N_LANDMARKS], "lmk_depth": depth[:, :N_LANDMARKS]}
