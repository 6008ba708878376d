"""Head pose and the perspective (pinhole) camera.

Frames and axes: the world and the head's canonical frame are right-handed with x right, y up,
z towards the frontal camera (OpenGL/NeRF). A head pose maps head -> world: X_w = R X_h + t with
R = R_y(yaw) R_x(pitch) R_z(roll); positive yaw turns the face towards +x (the viewer's right),
positive pitch tilts it down, positive roll tilts it towards the viewer's left. Cameras are 4x4
camera-to-world matrices in OpenGL axes (the camera looks along its -z, +y up), as NeRF and AD-NeRF use.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def euler_to_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """R = R_y(yaw) R_x(pitch) R_z(roll). Angles in radians, any shape (...) -> (..., 3, 3)."""
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    o, z = torch.ones_like(yaw), torch.zeros_like(yaw)
    Ry = torch.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(*yaw.shape, 3, 3)
    Rx = torch.stack([o, z, z, z, cp, -sp, z, sp, cp], -1).reshape(*yaw.shape, 3, 3)
    Rz = torch.stack([cr, -sr, z, sr, cr, z, z, z, o], -1).reshape(*yaw.shape, 3, 3)
    return Ry @ Rx @ Rz


def matrix_to_euler(R: np.ndarray) -> np.ndarray:
    """Inverse of ``euler_to_matrix`` (NumPy): (..., 3, 3) -> (..., 3) yaw, pitch, roll in radians."""
    R = np.asarray(R, np.float64)
    pitch = np.arcsin(np.clip(-R[..., 1, 2], -1, 1))
    yaw = np.arctan2(R[..., 0, 2], R[..., 2, 2])
    roll = np.arctan2(R[..., 1, 0], R[..., 1, 1])
    return np.stack([yaw, pitch, roll], -1)


def pose_matrix(pose: torch.Tensor) -> torch.Tensor:
    """pose (..., 6): yaw, pitch, roll in degrees, tx, ty, tz in metres -> (..., 4, 4) head-to-world."""
    ang = torch.deg2rad(pose[..., :3])
    R = euler_to_matrix(ang[..., 0], ang[..., 1], ang[..., 2])
    M = torch.zeros(*pose.shape[:-1], 4, 4, dtype=pose.dtype, device=pose.device)
    M[..., :3, :3] = R
    M[..., :3, 3] = pose[..., 3:]
    M[..., 3, 3] = 1.0
    return M


def apply_pose(verts: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Head-frame vertices (B, V, 3) -> world (B, V, 3) with pose (B, 6)."""
    M = pose_matrix(pose)
    return verts @ M[:, :3, :3].transpose(1, 2) + M[:, None, :3, 3]


def orbit_camera(yaw_deg: float, pitch_deg: float, distance: float, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(4, 4) OpenGL camera-to-world on a sphere around ``target`` looking at it.

    yaw_deg > 0 puts the camera to the viewer's right (+x), pitch_deg > 0 above (+y). (0, 0) is frontal.
    """
    a, b = math.radians(yaw_deg), math.radians(-pitch_deg)
    Ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    Rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    R = Ry @ Rx
    M = np.eye(4)
    M[:3, :3] = R
    M[:3, 3] = np.asarray(target) + R @ np.array([0.0, 0.0, distance])
    return M


def focal_for(width: int, fov_deg: float) -> float:
    """Focal length in pixels for a horizontal field of view."""
    return 0.5 * width / math.tan(math.radians(fov_deg) / 2)


def project(points: torch.Tensor, c2w: torch.Tensor, focal: float, cx: float, cy: float):
    """Perspective projection of world points.

    points (B, N, 3), c2w (B, 4, 4) OpenGL -> pixels (B, N, 2) (x column, y row, pixel centres at +0.5)
    and depth (B, N) along the viewing axis (positive in front of the camera), metres.
    """
    R = c2w[:, :3, :3]
    t = c2w[:, :3, 3]
    cam = (points - t[:, None]) @ R                          # world -> camera (GL axes)
    depth = -cam[..., 2]
    z = depth.clamp_min(1e-6)
    u = focal * cam[..., 0] / z + cx
    v = -focal * cam[..., 1] / z + cy
    return torch.stack([u, v], -1), depth


def head_canonical_c2w(c2w_world: np.ndarray, head_pose: np.ndarray) -> np.ndarray:
    """Camera in the head's frame (AD-NeRF's transform_matrix): inv(head_pose) @ c2w_world. (..., 4, 4)."""
    return np.linalg.inv(head_pose) @ c2w_world
