"""Drawing rays through a ``TalkingNeRF``: the one place that picks the backend.

Three backends produce the same features and opacity per ray (NeRF-3DTalker Eq. (5)):

- ``reference``: every sample inside the head box is evaluated, the occupancy grid masks the empty
  ones, PyTorch compositing (``composite_reference``). Differentiable; what training uses.
- ``fast`` (PyTorch): only occupied samples are evaluated, early ray termination (a front window of
  samples first, the rest only for rays still transparent), compositing by ``composite(backend="auto")``
  (the Triton compositing kernel on CUDA without gradients).
- ``fused`` (Triton): ray marching, the field and Eq. (5) in two kernels (``talklib.nerf.march_triton``),
  for fields it supports (``march_triton.unsupported`` says why not for the others), CUDA only.

``draw`` is the dispatch: ``TalkingNeRF.render`` calls it with the rays of B frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from talklib.nerf.composite import composite, triton_available
from talklib.nerf.sampling import ray_box, stratified_samples

#: rays per call from which early ray termination is on by default (4 frames of 128^2)
WINDOW_MIN_RAYS = 1 << 16


def default_window(n_rays: int) -> int:
    """The early-termination window ``draw`` uses for a call of n_rays rays when none is given: on a GPU
    the window paid at 8 frames per call and not at one (benchmarks/RESULTS.md, sections "The training
    step" and "The full speaker, again")."""
    return 16 if n_rays >= WINDOW_MIN_RAYS else 0


def per_sample_codes(codes: Tensor, frame: Tensor) -> Tensor:
    """codes (B, c) of the frames, frame (N,) the frame of each sample -> (N, c).

    With a gradient to carry and samples grouped by frame (``draw`` orders them so), each frame's
    code is expanded over its run of samples: the backward is then one sum per frame. A plain
    ``codes[frame]`` would be correct too, but its backward scatters N rows into B with a sort
    (``IndexBackward0``), which dominated a training step's GPU time (benchmarks/RESULTS.md, section
    "The training step").
    """
    if not (torch.is_grad_enabled() and codes.requires_grad) or frame.numel() < 2:
        return codes[frame]
    counts = torch.bincount(frame, minlength=codes.shape[0])
    grouped = (frame[1:] >= frame[:-1]).all()
    meta = torch.cat([counts, grouped.long()[None]]).tolist()   # one device sync
    if not meta[-1]:
        return codes[frame]
    return torch.cat([codes[b].expand(n, -1) for b, n in enumerate(meta[:-1]) if n])


def can_fuse(model, device: torch.device) -> bool:
    """True when the fused renderer can draw ``model`` here: CUDA with Triton, no gradient wanted,
    and a model ``march_triton.unsupported`` accepts."""
    if torch.is_grad_enabled() or not triton_available(device):
        return False
    from talklib.nerf.march_triton import unsupported

    return unsupported(model) is None


def samples(model, u: Tensor, rays_d: Tensor, codes: Tensor, frame_of_ray: Tensor, mask: Tensor,
            half: bool) -> tuple[Tensor, Tensor]:
    """The field at the samples where mask (R, S) is True -> dense sigma (R, S), features (R, S, C)
    (0 elsewhere); u are the samples in box units (R, S, 3)."""
    R, S = mask.shape
    sel = mask.reshape(-1).nonzero().squeeze(1)
    ray_of = sel // S
    with torch.autocast(u.device.type, dtype=torch.bfloat16, enabled=half):
        z, sig = model.field(u.reshape(-1, 3)[sel], rays_d[ray_of], per_sample_codes(codes, frame_of_ray[ray_of]))
    C = z.shape[-1]
    sigma = torch.zeros(R * S, device=u.device, dtype=torch.float32).index_copy(0, sel, sig.float())
    feat = torch.zeros(R * S, C, device=u.device, dtype=torch.float32).index_copy(0, sel, z.float())
    return sigma.view(R, S), feat.view(R, S, C)


def _composite(model, sigma: Tensor, feat: Tensor, t: Tensor, deltas: Tensor, depth: bool,
               backend: str) -> tuple[Tensor, Tensor]:
    """Eq. (5) over (R, S) samples (+ the depth channel); densities are per canonical unit length,
    so spacings are measured in units of the box half-size."""
    if depth:
        feat = torch.cat([feat, t[..., None]], dim=-1)
    return composite(sigma, feat, deltas / model.cfg.radius, backend=backend)


def render_rays(model, rays_o: Tensor, rays_d: Tensor, codes: Tensor, frame_of_ray: Tensor,
                mode: str = "reference", perturb: bool = False, generator: torch.Generator | None = None,
                half: bool = False, depth: bool = False, window: int = 16) -> tuple[Tensor, Tensor]:
    """Composite features along rays (canonical frame) with the PyTorch backends.

    rays_o, rays_d: (R, 3); codes: (B, code_dim) per frame (``model.codes``); frame_of_ray: (R,) long.
    mode: ``reference`` (every sample inside the box) or ``fast`` (occupied samples only, early ray
    termination: first the ``window`` samples from each ray's first occupied one; only rays still
    transparent after them (T > 1e-4) go on, composited behind with weight T — Eq. (5) is split
    exactly, C = C_front + T_front * C_back; window 0: all occupied samples at once).
    Returns features (R, C) and opacity (R,); with ``depth`` one more feature channel, the expected ray
    distance sum_i w_i t_i.
    """
    S = model.cfg.n_samples
    tn, tf = ray_box(rays_o, rays_d, model.center, model.cfg.radius, model.cfg.near, model.cfg.far)
    t, deltas = stratified_samples(tn, tf, S, generator=generator, perturb=perturb)
    pts = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    u = (pts - model.center) / model.cfg.radius
    valid = (deltas > 0) & (u.abs() <= 1.0).all(dim=-1)
    # The model's density is zero in empty grid cells (as in Instant-NGP): the reference path
    # evaluates every sample and masks, the fast path evaluates only the occupied ones.
    occ = model.occupancy.query(u) & valid
    if mode == "reference":
        sigma, feat = samples(model, u, rays_d, codes, frame_of_ray, valid, half)
        return _composite(model, sigma * occ, feat, t, deltas, depth, "reference")
    if mode != "fast":
        raise ValueError(f"render mode {mode!r}: use reference or fast")
    front = occ
    if window > 0:
        idx = torch.arange(S, device=occ.device)
        first = torch.where(occ.any(dim=1), occ.to(torch.uint8).argmax(dim=1), S)
        front = occ & (idx < first[:, None] + window)
    sigma, feat = samples(model, u, rays_d, codes, frame_of_ray, front, half)
    f, a = _composite(model, sigma, feat, t, deltas, depth, "auto")
    back = occ & ~front
    rows = (((1.0 - a) > 1e-4) & back.any(dim=1)).nonzero().squeeze(1)
    if rows.numel():
        s2, f2 = samples(model, u[rows], rays_d[rows], codes, frame_of_ray[rows], back[rows], half)
        g, b = _composite(model, s2, f2, t[rows], deltas[rows], depth, "auto")
        T = 1.0 - a[rows]
        f = f.index_add(0, rows, T[:, None] * g)
        a = a.index_add(0, rows, T * b)
    return f, a


def draw(model, rays_o: Tensor, rays_d: Tensor, codes: Tensor, rays_per_frame: int, mode: str = "reference",
         perturb: bool = False, generator: torch.Generator | None = None, half: bool = False,
         chunk: int = 1 << 17, depth: bool = False, window: int | None = None,
         fused: bool | None = None) -> tuple[Tensor, Tensor]:
    """Features (R, C) and opacity (R,) of the rays of B frames (frame b's rays at
    [b * rays_per_frame, (b + 1) * rays_per_frame)), by the backend the arguments ask for.

    fused: the fused Triton renderer; None uses it whenever it can (``can_fuse``, fast mode, no depth,
    no perturbation), True insists (an error if it cannot). Otherwise ``render_rays`` in chunks of
    ``chunk`` rays, with ``window`` (None: ``default_window`` of the call's ray count).
    """
    if fused is None:
        fused = mode == "fast" and can_fuse(model, rays_o.device) and not depth and not perturb
    elif fused and (mode != "fast" or depth or perturb):
        raise ValueError("fused=True draws the fast path only, without depth or perturbation")
    if fused:
        from talklib.nerf.march_triton import march

        return march(model, rays_o, rays_d, codes, rays_per_frame)
    B = codes.shape[0]
    frame = torch.arange(B, device=rays_o.device).repeat_interleave(rays_per_frame)
    if window is None:
        window = default_window(rays_o.shape[0])
    feats, accs = [], []
    for s in range(0, rays_o.shape[0], chunk):
        fe, ac = render_rays(model, rays_o[s:s + chunk], rays_d[s:s + chunk], codes, frame[s:s + chunk],
                             mode=mode, perturb=perturb, generator=generator, half=half, depth=depth, window=window)
        feats.append(fe)
        accs.append(ac)
    return torch.cat(feats), torch.cat(accs)
