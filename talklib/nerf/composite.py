"""Volume compositing, NeRF-3DTalker Eq. (5) (NeRF Eq. (3)), discretised along each ray.

For samples i = 1..S on a ray with densities sigma_i, spacings delta_i and features z_i:

    alpha_i = 1 - exp(-sigma_i delta_i),   T_i = exp(-sum_{j<i} sigma_j delta_j),   w_i = T_i alpha_i
    F(r) = sum_i w_i z_i,                  A(r) = sum_i w_i   (accumulated opacity)

``composite_reference`` is the plain PyTorch version (differentiable, any device). ``composite``
picks the fused Triton kernel (``talklib.nerf.composite_triton``) on CUDA when no gradient is needed
and Triton imports, else the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor


def composite_weights(sigma: Tensor, deltas: Tensor) -> Tensor:
    """Compositing weights w_i = T_i (1 - exp(-sigma_i delta_i)).

    sigma: (R, S) non-negative densities, deltas: (R, S) sample spacings. Returns (R, S).
    """
    tau = sigma * deltas
    # exclusive cumulative optical depth: sum_{j<i} tau_j
    excl = torch.cumsum(tau, dim=-1) - tau
    return torch.exp(-excl) * (1.0 - torch.exp(-tau))


def composite_reference(sigma: Tensor, feat: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. (5) in plain PyTorch.

    sigma: (R, S), feat: (R, S, C), deltas: (R, S).
    Returns the composited features (R, C) and the accumulated opacity (R,).
    """
    w = composite_weights(sigma, deltas)
    return (w.unsqueeze(-1) * feat).sum(dim=-2), w.sum(dim=-1)


def triton_available(device: torch.device | str) -> bool:
    """True when ``device`` is CUDA and Triton imports (the fused path can run)."""
    if torch.device(device).type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def composite(sigma: Tensor, feat: Tensor, deltas: Tensor, backend: str = "auto") -> tuple[Tensor, Tensor]:
    """Eq. (5), dispatching to the fastest correct implementation.

    backend: ``auto`` (Triton on CUDA when no gradient flows, else reference), ``reference`` or
    ``triton``. Shapes as in ``composite_reference``.
    """
    if backend not in ("auto", "reference", "triton"):
        raise ValueError(f"backend {backend!r}: use auto, reference or triton")
    needs_grad = torch.is_grad_enabled() and (sigma.requires_grad or feat.requires_grad)
    use_triton = backend == "triton" or (
        backend == "auto" and not needs_grad and triton_available(sigma.device)
    )
    if use_triton:
        from talklib.nerf.composite_triton import composite_triton

        return composite_triton(sigma, feat, deltas)
    return composite_reference(sigma, feat, deltas)
