"""The adversarial loss L_adv of S3D-NeRF Eq. (9), "with the architecture of StyleGAN discriminator".

Taught in notebook 09, section 9.7. StyleGAN2's discriminator (Karras et al. 2020), at our sizes:
a 1x1 "from RGB" conv, residual blocks that halve the size down to 4x4 (two 3x3 convs, a 1x1 skip,
summed and scaled by 1/sqrt(2)), the minibatch standard deviation as an extra channel, a 3x3 conv and
two fully connected layers. Losses are StyleGAN2's: the non-saturating softplus loss and the R1 penalty
gamma/2 |grad D(x_real)|^2, applied lazily every ``r1_every`` steps (scaled by that interval).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)     # 1x1, stride 2: applied to every other pixel

    def forward(self, x: Tensor) -> Tensor:
        # the stride-2 1x1 skip as a 1x1 conv of the even pixels (the same numbers): torch 2.13's oneDNN
        # kernel for a strided 1x1 conv's backward on channels-last input corrupts the heap on AVX-512 AMD
        # CPUs (tests/test_oneshot.py::test_discriminator_backward_on_channels_last_input)
        return (self.conv(x) + self.skip(x[:, :, ::2, ::2])) / math.sqrt(2.0)


class Discriminator(nn.Module):
    """(B, 3, size, size) images in [0, 1] -> (B,) realness logits."""

    def __init__(self, size: int, width: int = 32, max_width: int = 128, group: int = 4):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"discriminator size {size} must be a power of two >= 8")
        self.group = group
        self.from_rgb = nn.Sequential(nn.Conv2d(3, width, 1), nn.LeakyReLU(0.2))
        blocks, c, s = [], width, size
        while s > 4:
            blocks.append(_ResBlock(c, min(2 * c, max_width)))
            c, s = min(2 * c, max_width), s // 2
        self.blocks = nn.Sequential(*blocks)
        self.conv = nn.Sequential(nn.Conv2d(c + 1, c, 3, padding=1), nn.LeakyReLU(0.2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * 16, c), nn.LeakyReLU(0.2), nn.Linear(c, 1))

    def minibatch_std(self, x: Tensor) -> Tensor:
        """StyleGAN's minibatch standard deviation: one channel, the mean std over groups of the batch."""
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))          # (b / g,)
        y = y.repeat(g)[:, None, None, None].expand(b, 1, h, w)
        return torch.cat([x, y], 1)

    def forward(self, img: Tensor) -> Tensor:
        x = self.blocks(self.from_rgb(img * 2.0 - 1.0))
        return self.fc(self.conv(self.minibatch_std(x)))[:, 0]


def generator_adv_loss(d_fake: Tensor) -> Tensor:
    """Non-saturating: softplus(-D(G(z)))."""
    return F.softplus(-d_fake).mean()


def discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """softplus(D(G(z))) + softplus(-D(x))."""
    return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()


def r1_penalty(disc: Discriminator, real: Tensor, gamma: float) -> Tensor:
    """R1: gamma / 2 * E |grad_x D(x)|^2 on real images."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(real).sum(), real, create_graph=True)
    return 0.5 * gamma * grad.pow(2).sum((1, 2, 3)).mean()
