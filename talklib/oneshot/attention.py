"""S3D-NeRF's Cross-modal Facial Deformation Field, first half (Sec. 3.2): who attends to speech.

Taught in notebook 09, section 9.4.

1. **Aggregating multi-scale facial features**: every tri-plane level F^0..F^3 is resized to
   H_s x W_s, concatenated over channels and flattened into H_s W_s tokens, which slot attention
   (Locatello et al. 2020) turns into F_agg (B, H_s W_s, D_slot): ``SlotAttention``.
2. **The driving audio feature** a_dri: a fully convolutional 1-D network over a mel window
   (``AudioConv``; the paper's input is Wav2Vec 2.0, which cannot be downloaded here: we give it the
   80-band mel stream of ``talklib.sync.crops.clip_mel`` and train it from scratch).
3. **Audio-visual correlation**, Eq. (3): F_cm = MHCA(F_agg, a_dri) =
   Softmax(F_agg W^Q (a_dri W^K)^T / sqrt(d)) a_dri W^V, the visual tokens as queries
   (``CrossAttention``). Averaged over channels, F_cm is the heat map of the paper's Fig. 3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SlotAttention(nn.Module):
    """Slot attention: n_slots slots, each drawn from a learned Gaussian of its own, compete for the inputs.

    Per iteration: q from LayerNorm(slots) scaled by D^-1/2, softmax over the *slots* axis, +1e-8 and
    renormalised over the inputs (a weighted mean), a GRU update and a residual MLP. (B, N, D_in) ->
    (B, n_slots, dim). Locatello et al. draw every slot from one shared Gaussian; S3D-NeRF wants H_s W_s slots
    that keep a place on the face (F_agg is read back as an H_s x W_s map), and in eval mode slots started at a
    shared mean would all be equal (nothing breaks the symmetry), so each slot has its own learned mean
    (as in learned-query slot attention). Training adds the learned spread times noise (reproducible with
    ``generator``); eval starts at the means: deterministic renders.
    """

    def __init__(self, n_slots: int, dim: int, in_dim: int, iters: int = 3, hidden: int = 128):
        super().__init__()
        self.n_slots, self.dim, self.iters = int(n_slots), int(dim), int(iters)
        self.mu = nn.Parameter(torch.randn(1, n_slots, dim) * dim ** -0.5)
        self.log_sigma = nn.Parameter(torch.full((1, 1, dim), -1.0))
        self.norm_in = nn.LayerNorm(in_dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(in_dim, dim, bias=False)
        self.to_v = nn.Linear(in_dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, inputs: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Returns the slots (B, n_slots, dim) and the last attention (B, n_slots, N)."""
        b, n, _ = inputs.shape
        x = self.norm_in(inputs)
        k, v = self.to_k(x), self.to_v(x)
        slots = self.mu.expand(b, -1, -1)
        if self.training:
            noise = torch.randn(b, self.n_slots, self.dim, device=inputs.device, dtype=inputs.dtype,
                                generator=generator)
            slots = slots + self.log_sigma.exp() * noise
        attn = None
        for _ in range(self.iters):
            prev = slots
            q = self.to_q(self.norm_slots(slots)) * self.dim ** -0.5
            attn = torch.softmax(q @ k.transpose(1, 2), dim=1) + 1e-8          # softmax over the slots
            weights = attn / attn.sum(-1, keepdim=True)                        # weighted mean over inputs
            updates = weights @ v
            slots = self.gru(updates.reshape(-1, self.dim), prev.reshape(-1, self.dim)).reshape(b, -1, self.dim)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attn


class AudioConv(nn.Module):
    """a_dri: (B, S, M) mel window (S steps, M bands in [0, 1]) -> (B, S, dim) tokens, fully convolutional."""

    def __init__(self, n_mels: int = 80, dim: int = 32, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(n_mels, width, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv1d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv1d(width, dim, 3, padding=1))

    def forward(self, mel: Tensor) -> Tensor:
        return self.net(mel.transpose(1, 2) * 2.0 - 1.0).transpose(1, 2)


class CrossAttention(nn.Module):
    """Eq. (3), multi-head: queries from the visual tokens F_agg, keys and values from the audio a_dri.

    forward(f_agg (B, N, q_dim), a_dri (B, S, a_dim)) -> F_cm (B, N, dim) and the attention (B, heads, N, S).
    """

    def __init__(self, q_dim: int, a_dim: int, dim: int, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"cross-attention width {dim} is not a multiple of its {heads} heads")
        self.heads, self.dim = int(heads), int(dim)
        self.w_q = nn.Linear(q_dim, dim, bias=False)
        self.w_k = nn.Linear(a_dim, dim, bias=False)
        self.w_v = nn.Linear(a_dim, dim, bias=False)

    def forward(self, f_agg: Tensor, a_dri: Tensor) -> tuple[Tensor, Tensor]:
        b, n, _ = f_agg.shape
        s = a_dri.shape[1]
        h, d = self.heads, self.dim // self.heads
        q = self.w_q(f_agg).reshape(b, n, h, d).transpose(1, 2)
        k = self.w_k(a_dri).reshape(b, s, h, d).transpose(1, 2)
        v = self.w_v(a_dri).reshape(b, s, h, d).transpose(1, 2)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)   # (B, h, N, S)
        return (attn @ v).transpose(1, 2).reshape(b, n, self.dim), attn


def aggregate_levels(planes: list[Tensor], size: int) -> Tensor:
    """The tri-plane levels resized to size x size and concatenated: (B, size^2, 3 C levels) tokens."""
    maps = [F.interpolate(p.flatten(1, 2), size=(size, size), mode="bilinear", align_corners=False)
            for p in planes]
    return torch.cat(maps, 1).flatten(2).transpose(1, 2)


def heat_map(f_cm: Tensor, size: int) -> Tensor:
    """Fig. 3's heat map: F_cm (B, size^2, d) averaged over its channels -> (B, size, size)."""
    return f_cm.mean(-1).reshape(f_cm.shape[0], size, size)
