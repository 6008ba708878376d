"""S3D-NeRF's Hierarchical Facial Appearance Encoder (Sec. 3.1, Eq. 1) and the tri-plane lookup (Eq. 2).

Taught in notebook 09, sections 9.2-9.3.

The source image (the masked inner face, plus the mask as a fourth channel) goes through down-sampling
blocks D^0..D^3 (each halves the size); a feature pyramid (FPN) then walks back up:

    F^3 = D^3,    F^i = Conv^i_1x1([Up^i(F^{i+1}), D^i]),  i = 2, 1, 0          (Eq. 1)

Every F^i has 3 C channels and is split into the three orthogonal planes F_xy, F_yz, F_xz of C channels
each: a tri-plane per level, made from *one* image instead of learned per scene.

A 3D point x (head frame, after the deformation of Eq. 4) reads the planes through the inverse source
pose (Eq. 2): it is moved into the source camera's frame, where the xy plane is the image plane. We
sample F_xy at the point's *projection* into the source image (pixel-aligned, so a point on the face reads
the feature of the pixel that shows it) and F_yz, F_xz at its camera-frame coordinates scaled to the head
box. The three planes' features are summed (EG3D) and the levels concatenated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _down(cin: int, cout: int) -> nn.Sequential:
    """Down^i: a stride-2 conv block (halves the size)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2))


class AppearanceEncoder(nn.Module):
    """Eq. (1): (B, 4, H, W) masked source + mask -> 4 tri-planes, level i of shape (B, 3, C, H / 2^(i+1), ...).

    widths: channels of D^0..D^3; channels: C, channels per plane (every level).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 48, 64, 96), channels: int = 8, in_ch: int = 4):
        super().__init__()
        self.channels = int(channels)
        c3 = 3 * self.channels
        self.down = nn.ModuleList()
        cin = in_ch
        for i, w in enumerate(widths):
            cout = c3 if i == len(widths) - 1 else w     # D^3 is F^3, so it has 3C channels
            self.down.append(_down(cin, cout))
            cin = cout
        # Up^i: a 3x3 conv after bilinear x2 upsampling; Conv^i: the 1x1 conv of Eq. (1)
        self.up = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                               nn.Conv2d(c3, c3, 3, padding=1), nn.LeakyReLU(0.2))
                                 for _ in widths[:-1]])
        self.lateral = nn.ModuleList([nn.Conv2d(c3 + w, c3, 1) for w in widths[:-1]])

    @property
    def levels(self) -> int:
        return len(self.down)

    def forward(self, image: Tensor) -> list[Tensor]:
        d = []
        x = image
        for block in self.down:
            x = block(x)
            d.append(x)                                   # D^0 .. D^3
        f = [None] * len(d)
        f[-1] = d[-1]                                     # F^3 = D^3
        for i in range(len(d) - 2, -1, -1):
            f[i] = self.lateral[i](torch.cat([self.up[i](f[i + 1]), d[i]], 1))
        b = image.shape[0]
        return [fi.reshape(b, 3, self.channels, fi.shape[-2], fi.shape[-1]) for fi in f]


def source_coordinates(x: Tensor, src_w2c: Tensor, focal: float, cx: float, cy: float, size: int,
                       center: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """Inv(P_src) . x of Eq. (2): points x (B, N, 3) in the head frame -> the planes' coordinates.

    src_w2c: (B, 4, 4) head-to-source-camera (the inverse of the source image's c2w); ``focal, cx, cy,
    size`` the source image's pinhole (pixels). Returns ``uv`` (B, N, 2), the projection into the source
    image in grid_sample's [-1, 1] (x right, y down), for F_xy; and ``q`` (B, N, 3), the camera-frame point
    relative to the head box centre over ``radius`` (x right, y up, z towards the camera), for F_yz, F_xz.
    """
    R, t = src_w2c[:, :3, :3], src_w2c[:, None, :3, 3]
    xc = x @ R.transpose(1, 2) + t                              # camera frame: looks down -z
    depth = (-xc[..., 2]).clamp_min(1e-3)
    px = focal * xc[..., 0] / depth + cx
    py = cy - focal * xc[..., 1] / depth
    uv = torch.stack([px / size * 2.0 - 1.0, py / size * 2.0 - 1.0], -1)
    c = center.to(x).reshape(1, 1, 3) @ R.transpose(1, 2) + t   # (B, 1, 3) the box centre in the camera frame
    return uv, (xc - c) / radius


def sample_planes(planes: list[Tensor], uv: Tensor, q: Tensor) -> Tensor:
    """Eq. (2): F_xyz^i(x~) for every level i, the three planes summed; levels concatenated.

    planes: the encoder's list of (B, 3, C, h, w); uv (B, N, 2), q (B, N, 3) from ``source_coordinates``.
    Returns (B, N, C * levels).
    """
    grids = (uv, q[..., [2, 1]] * torch.tensor([1.0, -1.0], device=q.device, dtype=q.dtype),   # yz: z right, y down
             q[..., [0, 2]] * torch.tensor([1.0, -1.0], device=q.device, dtype=q.dtype))   # xz: x right, z down
    out = []
    for level in planes:
        acc = 0.0
        for k, g in enumerate(grids):
            f = F.grid_sample(level[:, k], g[:, :, None, :], mode="bilinear", padding_mode="zeros",
                              align_corners=False)       # (B, C, N, 1)
            acc = acc + f[..., 0]
        out.append(acc.transpose(1, 2))                   # (B, N, C)
    return torch.cat(out, -1)
