"""S3D-NeRF's super-resolution module (Sec. 3.3): I_gen^fine = Supres(I_gen^coar, I_src^full).

Taught in notebook 09, section 9.6.

The NeRF renders only the inner face, at a low resolution (the coarse image and its opacity). The
super-resolution module brings it to full size and adds what the NeRF does not draw — the outer face,
hair and background — from the full source image. The paper leaves the architecture to its appendix;
ours: the coarse features and the source image's features (at both resolutions) are merged by convs,
upsampled x2 per stage (pixel shuffle) and added as a residual to a base image: the bilinearly
upsampled coarse colour over the source image, where the coarse opacity says the NeRF drew nothing.
The residual starts at zero, so an untrained module shows exactly that composite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2))


class SuperResolution(nn.Module):
    """(coarse (B, feat_dim, h, w) premultiplied features with colour first, acc (B, 1, h, w),
    source (B, 3, h f, w f)) -> (B, 3, h f, w f); factor f a power of two."""

    def __init__(self, feat_dim: int, factor: int, width: int = 32):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"super-resolution factor {factor} must be a power of two")
        self.factor = int(factor)
        n_up = self.factor.bit_length() - 1
        self.src_full = _conv(3, width // 2)
        self.src_low = nn.Sequential(*[_conv(width // 2 if i == 0 else width, width, 2) for i in range(n_up)]) \
            if n_up else _conv(width // 2, width)
        self.merge = nn.Sequential(_conv(feat_dim + 1 + width, width), _conv(width, width))
        self.ups = nn.ModuleList([nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                                                nn.LeakyReLU(0.2)) for _ in range(n_up)])
        self.last = nn.Sequential(_conv(width + width // 2, width), nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(self.last[-1].weight)
        nn.init.zeros_(self.last[-1].bias)

    def base(self, coarse: Tensor, acc: Tensor, source: Tensor) -> Tensor:
        """The residual's starting point: upsampled coarse colour over the source where the NeRF drew nothing."""
        up = lambda t: F.interpolate(t, scale_factor=self.factor, mode="bilinear", align_corners=False)  # noqa: E731
        return up(coarse[:, :3]) + (1.0 - up(acc)) * source

    def forward(self, coarse: Tensor, acc: Tensor, source: Tensor) -> Tensor:
        s_full = self.src_full(source)
        h = self.merge(torch.cat([coarse, acc, self.src_low(s_full)], 1))
        for up in self.ups:
            h = up(h)
        return self.base(coarse, acc, source) + self.last(torch.cat([h, s_full], 1))
