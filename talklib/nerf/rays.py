"""Camera rays, head pose to canonical head space, and novel views.

Camera convention (NeRF / AD-NeRF ``transforms_*.json``): camera-to-world 4x4 matrices, camera looks
down its -z axis, +y up, +x right; pixel (i, j) centre at (i + 0.5, j + 0.5) with focal length and
principal point (cx, cy) in pixels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def camera_rays(c2w: Tensor, focal: float, cx: float, cy: float, H: int, W: int) -> tuple[Tensor, Tensor]:
    """Rays through every pixel centre of an H x W image.

    c2w: (B, 4, 4). Returns origins (B, H*W, 3) and unit directions (B, H*W, 3), world frame.
    """
    dev, dt = c2w.device, c2w.dtype
    j, i = torch.meshgrid(torch.arange(H, device=dev, dtype=dt) + 0.5,
                          torch.arange(W, device=dev, dtype=dt) + 0.5, indexing="ij")
    dirs = torch.stack([(i - cx) / focal, -(j - cy) / focal, -torch.ones_like(i)], dim=-1).reshape(-1, 3)
    d = dirs @ c2w[:, :3, :3].transpose(1, 2)                      # (B, HW, 3)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[:, None, :3, 3].expand_as(d)
    return o, d


def to_canonical(rays_o: Tensor, rays_d: Tensor, head_pose: Tensor) -> tuple[Tensor, Tensor]:
    """Map world rays into canonical head space: x_can = R^T (x - t) (DFA-NeRF: pose as view direction).

    rays_*: (B, N, 3); head_pose: (B, 4, 4) head-to-world [R | t]. Directions stay unit length.
    """
    R, t = head_pose[:, :3, :3], head_pose[:, None, :3, 3]
    return (rays_o - t) @ R, rays_d @ R


def rotation(yaw_deg: float, pitch_deg: float, dtype=torch.float32) -> Tensor:
    """3x3 rotation: yaw about +y (up), then pitch about +x."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    Ry = torch.tensor([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]], dtype=dtype)
    Rx = torch.tensor([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]], dtype=dtype)
    return Ry @ Rx


def orbit(c2w: Tensor, yaw_deg: float, pitch_deg: float, center: Tensor) -> Tensor:
    """Novel view: move cameras (B, 4, 4) around ``center`` (3,) by yaw/pitch (degrees), still facing it."""
    Rm = rotation(yaw_deg, pitch_deg, c2w.dtype).to(c2w.device)
    out = c2w.clone()
    out[:, :3, :3] = Rm @ c2w[:, :3, :3]
    out[:, :3, 3] = (c2w[:, :3, 3] - center) @ Rm.T + center
    return out
