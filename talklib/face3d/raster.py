"""A small torch triangle rasterizer (z-buffer), deterministic, CPU or GPU.

Every triangle visits exactly the pixels of its bounding box. Edge functions and inverse depth are
affine in screen space, so each (frame, triangle) pair gets its plane coefficients once and each
candidate pixel costs three multiply-adds. The nearest fragment per pixel wins through one
``scatter_reduce(amin)`` on an int64 key (quantised depth, then face index), so ties break the same
way on every run. Barycentrics are perspective-correct. Not differentiable (fitting uses landmarks).
"""

from __future__ import annotations

import torch

_NONE = torch.iinfo(torch.int64).max


def _planes(tri: torch.Tensor, tz: torch.Tensor, near: float) -> torch.Tensor:
    """Affine plane coefficients (..., 3, 3): rows w0, w1 (screen barycentrics) and 1/z, as (a, b, c) of a*x+b*y+c."""
    x0, y0 = tri[..., 0, 0], tri[..., 0, 1]
    x1, y1 = tri[..., 1, 0], tri[..., 1, 1]
    x2, y2 = tri[..., 2, 0], tri[..., 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    area = torch.where(area.abs() < 1e-9, torch.full_like(area, 1e-9), area)
    # w0 = ((x1 - x)(y2 - y) - (x2 - x)(y1 - y)) / area ; w1 = ((x2 - x)(y0 - y) - (x0 - x)(y2 - y)) / area
    a0, b0, c0 = (y1 - y2) / area, (x2 - x1) / area, (x1 * y2 - x2 * y1) / area
    a1, b1, c1 = (y2 - y0) / area, (x0 - x2) / area, (x2 * y0 - x0 * y2) / area
    iz = 1.0 / tz.clamp_min(near)
    # 1/z = w0/z0 + w1/z1 + (1 - w0 - w1)/z2
    d0, d1 = iz[..., 0] - iz[..., 2], iz[..., 1] - iz[..., 2]
    az, bz, cz = a0 * d0 + a1 * d1, b0 * d0 + b1 * d1, c0 * d0 + c1 * d1 + iz[..., 2]
    return torch.stack([torch.stack([a0, b0, c0], -1), torch.stack([a1, b1, c1], -1),
                        torch.stack([az, bz, cz], -1)], -2)


def rasterize(pix: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, height: int, width: int,
              near: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize B meshes that share ``faces``.

    pix (B, V, 2) pixel coordinates (x column, y row; pixel (i, j) has its centre at (j+0.5, i+0.5)),
    depth (B, V) positive view depth, faces (F, 3) int64.
    Returns face index (B, H, W) int64 (-1 = empty), barycentrics (B, H, W, 3) perspective-correct
    (zeros where empty), depth (B, H, W) (0 where empty).
    """
    B = pix.shape[0]
    F = faces.shape[0]
    dev = pix.device
    tri = pix[:, faces]                                     # (B, F, 3, 2)
    tz = depth[:, faces]                                    # (B, F, 3)
    lo = torch.ceil(tri.amin(2) - 0.5).clamp(min=0).to(torch.int64)
    hi = torch.floor(tri.amax(2) - 0.5).to(torch.int64)
    hi = torch.minimum(hi, torch.tensor([width - 1, height - 1], device=dev))
    ext = (hi - lo + 1).clamp(min=0)
    ok = (tz > near).all(-1) & (ext > 0).all(-1)
    planes = _planes(tri, tz, near).reshape(B * F, 9)
    pair = torch.nonzero(ok.reshape(-1), as_tuple=False)[:, 0]   # valid (b, f) pairs, flattened b*F+f
    ex = ext.reshape(B * F, 2)[pair]
    n = ex[:, 0] * ex[:, 1]
    key_buf = torch.full((B * height * width,), _NONE, dtype=torch.int64, device=dev)
    # candidates in chunks of pairs to bound memory (~150 bytes each); the chunking does not change the result
    csum = torch.cumsum(n, 0)
    budget = 4_000_000 if dev.type == "cpu" else 16_000_000
    start = 0
    P = pair.numel()
    while start < P:
        done = csum[start - 1] if start > 0 else torch.zeros((), dtype=torch.int64, device=dev)
        stop = int(torch.searchsorted(csum, done + budget, right=True).item())
        stop = max(stop, start + 1)
        stop = min(stop, P)
        _scatter(pair[start:stop], ex[start:stop], n[start:stop], lo, planes, F, height, width, key_buf)
        start = stop
    key_buf = key_buf.view(B, height, width)
    hit = key_buf != _NONE
    face = torch.where(hit, key_buf % (F + 1), torch.full_like(key_buf, -1))
    # perspective-correct barycentrics of the winning face at each pixel centre
    ys, xs = torch.meshgrid(torch.arange(height, device=dev, dtype=pix.dtype) + 0.5,
                            torch.arange(width, device=dev, dtype=pix.dtype) + 0.5, indexing="ij")
    bidx = torch.arange(B, device=dev)[:, None, None]
    pl = planes.view(B, F, 3, 3)[bidx, face.clamp(min=0)]   # (B, H, W, 3, 3)
    xy1 = torch.stack([xs, ys, torch.ones_like(xs)], -1)     # (H, W, 3)
    val = (pl * xy1[None, :, :, None, :]).sum(-1)            # (B, H, W, 3): w0, w1, 1/z
    w0, w1, iz = val.unbind(-1)
    w = torch.stack([w0, w1, 1.0 - w0 - w1], -1)
    izv = 1.0 / tz.clamp_min(near)[bidx, face.clamp(min=0)]  # (B, H, W, 3)
    zpix = 1.0 / iz.clamp_min(1e-12)
    bpc = w * izv * zpix[..., None]
    bpc = torch.where(hit[..., None], bpc, torch.zeros_like(bpc))
    zpix = torch.where(hit, zpix, torch.zeros_like(zpix))
    return face, bpc, zpix


def _scatter(pair, ex, n, lo, planes, F, height, width, key_buf):
    """Candidate pixels of (frame, face) ``pair``s: keep inside fragments, min-reduce their keys."""
    dev = pair.device
    N = int(n.sum().item())
    which = torch.repeat_interleave(torch.arange(pair.numel(), device=dev), n)
    first = torch.cumsum(n, 0) - n
    k = torch.arange(N, device=dev) - first[which]
    exw = ex[which, 0]
    p = pair[which]
    lo_flat = lo.reshape(-1, 2)
    px = lo_flat[p, 0] + k % exw
    py = lo_flat[p, 1] + k // exw
    x = px.to(planes.dtype) + 0.5
    y = py.to(planes.dtype) + 0.5
    pl = planes[p]                                           # (N, 9)
    w0 = pl[:, 0] * x + pl[:, 1] * y + pl[:, 2]
    w1 = pl[:, 3] * x + pl[:, 4] * y + pl[:, 5]
    iz = pl[:, 6] * x + pl[:, 7] * y + pl[:, 8]
    eps = -1e-6
    inside = (w0 >= eps) & (w1 >= eps) & (1.0 - w0 - w1 >= eps) & (iz > 0)
    q = ((1.0 / iz[inside]) * 1e6).round().to(torch.int64).clamp(0, 2**40)
    f = p[inside] % F
    b = p[inside] // F
    key = q * (F + 1) + f
    lin = b * (height * width) + py[inside] * width + px[inside]
    key_buf.scatter_reduce_(0, lin, key, reduce="amin")


def interpolate(attr: torch.Tensor, faces: torch.Tensor, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex attributes attr (B, V, C) at pixels -> (B, H, W, C) (zeros where empty)."""
    B = attr.shape[0]
    bidx = torch.arange(B, device=attr.device)[:, None, None, None]
    tri = attr[bidx, faces[face.clamp(min=0)]]              # (B, H, W, 3, C)
    out = (tri * bary[..., None]).sum(-2)
    return torch.where((face >= 0)[..., None], out, torch.zeros_like(out))
