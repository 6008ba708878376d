"""The 2D upsampler H_u of NeRF-3DTalker Eq. (5) (after GIRAFFE / StyleGAN2's neural rendering).

The field is rendered to a low-resolution feature image (B, C, h, w) whose first three channels
are a premultiplied colour; H_u brings it to (B, 3, h f, w f) as the bilinear upsampling of that
colour plus a learned residual from all channels (conv + pixel shuffle, x2 per stage). The residual
starts at zero, so an untrained H_u is plain bilinear upsampling.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Upsampler(nn.Module):
    """H_u: (B, C, h, w) -> (B, 3, h * factor, w * factor); factor a power of two (1 = no upsampling)."""

    def __init__(self, feat_dim: int, factor: int, hidden: int = 32):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"upsampling factor {factor} must be a power of two")
        self.factor = factor
        layers: list[nn.Module] = [nn.Conv2d(feat_dim, hidden, 3, padding=1), nn.SiLU()]
        f = factor
        while f > 1:
            layers += [nn.Conv2d(hidden, hidden * 4, 3, padding=1), nn.PixelShuffle(2), nn.SiLU()]
            f //= 2
        last = nn.Conv2d(hidden, 3, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.residual = nn.Sequential(*layers, last) if feat_dim > 3 else None

    def forward(self, feat: Tensor) -> Tensor:
        base = feat[:, :3]
        if self.factor > 1:
            base = F.interpolate(base, scale_factor=self.factor, mode="bilinear", align_corners=False)
        if self.residual is None:
            return base
        return base + self.residual(feat)
