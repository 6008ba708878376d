"""Where along each ray to evaluate the field: near/far bounds, stratified samples, occupancy grid.

The head lives in a canonical box: world/canonical point x maps to unit coordinates
u = (x - center) / radius in [-1, 1]^3 where the field is defined. Rays are clipped to that box and
to [near, far] (AD-NeRF: mean head depth - 0.2 / + 0.4). An occupancy grid over the unit cube marks
cells where the density can be non-zero for any training condition; samples in empty cells are
skipped (RAD-NeRF / Instant-NGP style), which is most of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ray_box(rays_o: Tensor, rays_d: Tensor, center: Tensor, radius: float,
            near: float, far: float) -> tuple[Tensor, Tensor]:
    """Entry/exit distances of rays (..., 3) through the box center +- radius, clipped to [near, far].

    Returns t_near, t_far (...,); a ray that misses has t_far <= t_near.
    """
    inv = 1.0 / torch.where(rays_d.abs() < 1e-9, torch.full_like(rays_d, 1e-9), rays_d)
    t0 = (center - radius - rays_o) * inv
    t1 = (center + radius - rays_o) * inv
    tn = torch.minimum(t0, t1).amax(dim=-1).clamp(min=near)
    tf = torch.maximum(t0, t1).amin(dim=-1).clamp(max=far)
    return tn, tf


def stratified_samples(t_near: Tensor, t_far: Tensor, n_samples: int,
                       generator: torch.Generator | None = None, perturb: bool = False) -> tuple[Tensor, Tensor]:
    """n_samples evenly spaced (optionally jittered) depths per ray between t_near and t_far.

    t_near, t_far: (R,). Returns depths t (R, S) and spacings deltas (R, S) (0 for rays that miss).
    """
    span = (t_far - t_near).clamp(min=0.0)
    step = span / n_samples
    base = torch.arange(n_samples, device=t_near.device, dtype=t_near.dtype)
    if perturb:
        off = torch.rand(t_near.shape[0], n_samples, device=t_near.device, dtype=t_near.dtype, generator=generator)
    else:
        off = torch.full((t_near.shape[0], n_samples), 0.5, device=t_near.device, dtype=t_near.dtype)
    t = t_near[:, None] + (base + off) * step[:, None]
    return t, step[:, None].expand(-1, n_samples).contiguous()


class OccupancyGrid(nn.Module):
    """Boolean grid (res^3) over the unit cube [-1, 1]^3: True where a sample must be evaluated."""

    def __init__(self, res: int = 64):
        super().__init__()
        self.res = int(res)
        self.register_buffer("occupied", torch.ones(self.res, self.res, self.res, dtype=torch.bool))

    def cell_index(self, u: Tensor) -> Tensor:
        idx = ((u.clamp(-1.0, 1.0 - 1e-6) + 1.0) * 0.5 * self.res).long()
        return (idx[..., 0] * self.res + idx[..., 1]) * self.res + idx[..., 2]

    def query(self, u: Tensor) -> Tensor:
        """u: (..., 3) unit coordinates -> (...,) True where occupied (outside the cube: False)."""
        inside = (u.abs() <= 1.0).all(dim=-1)
        return self.occupied.reshape(-1)[self.cell_index(u)] & inside

    @torch.no_grad()
    def update(self, density_fn, codes: Tensor, threshold: float, chunk: int = 1 << 18,
               generator: torch.Generator | None = None) -> float:
        """Recompute occupancy as max density over conditions ``codes`` (K, code) > threshold.

        density_fn(u (N, 3), code (N, c)) -> sigma (N,). Each cell is probed at a jittered point per
        condition; the result is dilated by one cell so thin structures are not cut. Returns the
        occupied fraction.
        """
        r, dev = self.res, self.occupied.device
        lin = (torch.arange(r, device=dev, dtype=torch.float32) + 0.5) / r * 2 - 1
        pts = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), dim=-1).reshape(-1, 3)
        best = torch.zeros(pts.shape[0], device=dev)
        for code in codes:
            jit = (torch.rand(pts.shape, device=dev, generator=generator) - 0.5) * (2.0 / r)
            p = pts + jit
            for s in range(0, p.shape[0], chunk):
                sig = density_fn(p[s:s + chunk], code.expand(min(chunk, p.shape[0] - s), -1))
                best[s:s + chunk] = torch.maximum(best[s:s + chunk], sig.float())
        occ = (best > threshold).reshape(1, 1, r, r, r).float()
        occ = F.max_pool3d(occ, kernel_size=3, stride=1, padding=1)
        self.occupied.copy_(occ[0, 0] > 0)
        return float(self.occupied.float().mean())
