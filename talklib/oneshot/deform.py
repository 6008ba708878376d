"""S3D-NeRF's Cross-modal Facial Deformation Field, second half (Sec. 3.2, Eq. 4), and Table 3's variants.

Taught in notebook 09, section 9.5.

    Δx = Deform(x, a_dri, F_cm),   x~ = x + Δx                                        (Eq. 4)

``Deform`` is "U-Net like": an MLP whose widths narrow and widen again, with skip connections from each
narrowing layer to the widening layer of the same width. Per point it sees x (positionally encoded, in
head-box units), the driving audio a_dri (the window's tokens flattened and projected to one vector) and
the cross-modal correlation F_cm *at that point*: F_cm is an H_s x W_s map over the source image, read
at the point's projection into it (``encoder.source_coordinates``' uv), so each face region gets the
audio its region attends to. The last layer starts at zero: an untrained field does not deform.

Table 3's ablations change only what ``Deform`` sees (``VARIANTS``):

- ``full``: x, a_dri and F_cm (the paper's model);
- ``nd`` (Naive Deform): x and a_dri only — audio alone must say how every face region moves;
- ``fcd`` (Feat-Concatenate Deform): x, a_dri and the tri-plane feature at x instead of F_cm;
- ``none`` (w/o Deform): no deformation; a_dri is concatenated to the tri-plane feature at the decoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from talklib.nerf.encoding import positional_dim, positional_encoding

VARIANTS = ("full", "nd", "fcd", "none")


class Deform(nn.Module):
    """Eq. (4): (x (B, N, 3) box units, condition (B, N, cond_dim)) -> Δx (B, N, 3) in box units.

    widths: the narrowing widths (e.g. (64, 32, 16)); the widening half mirrors them with skips.
    max_shift: |Δx| per axis is at most this (tanh), in box units.
    """

    def __init__(self, cond_dim: int, widths: tuple[int, ...] = (64, 32, 16), n_freqs: int = 4,
                 max_shift: float = 0.25):
        super().__init__()
        self.n_freqs, self.max_shift = int(n_freqs), float(max_shift)
        cin = positional_dim(3, self.n_freqs) + cond_dim
        self.down = nn.ModuleList()
        for w in widths:
            self.down.append(nn.Sequential(nn.Linear(cin, w), nn.SiLU()))
            cin = w
        self.up = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.Sequential(nn.Linear(cin + w, w), nn.SiLU()))   # + the skip of width w
            cin = w
        self.out = nn.Linear(cin, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = torch.cat([positional_encoding(x, self.n_freqs), cond], -1)
        skips = []
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        skips.pop()                                          # the bottleneck has no partner
        for layer in self.up:
            h = layer(torch.cat([h, skips.pop()], -1))
        return self.max_shift * torch.tanh(self.out(h))


def deform_condition_dim(variant: str, audio_dim: int, cm_dim: int, feat_dim: int) -> int:
    """Width of what ``Deform`` sees besides x, for a Table 3 variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown S3D-NeRF variant {variant!r}: choose from {', '.join(VARIANTS)}")
    return {"full": audio_dim + cm_dim, "nd": audio_dim, "fcd": audio_dim + feat_dim, "none": 0}[variant]
