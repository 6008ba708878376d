"""The assembled talking-head renderer: conditional field + sampler + compositor + H_u + background.

``TalkingNeRF.render`` draws frames: rays at the low resolution (H/f, W/f), samples clipped to the
canonical head box, field evaluated only where the occupancy grid says so (fast mode) or everywhere
(reference mode), Eq. (5) compositing, H_u upsampling, and the known background behind:

    I = H_u(F) + (1 - up(A)) * background

On a CUDA GPU the fast mode's per-ray work is two Triton kernels (``talklib.nerf.march_triton``); on
a CPU, and while training, it is the PyTorch code of ``render_rays``.

Everything the model needs to be rebuilt is in ``config`` (a JSON-able dict), saved with checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib.condition.audionet import ConditionConfig, Conditioner
from talklib.nerf.composite import composite, triton_available
from talklib.nerf.field import ConditionalField, ConditionSpec, FieldConfig
from talklib.nerf.rays import camera_rays, to_canonical
from talklib.nerf.sampling import OccupancyGrid, ray_box, stratified_samples
from talklib.nerf.upsampler import Upsampler


@dataclass
class NeRFConfig:
    cond_parts: dict[str, int]
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0
    near: float = 0.0
    far: float = 100.0
    n_samples: int = 64
    upsample: int = 1
    up_hidden: int = 32
    occ_res: int = 64
    occ_alpha: float = 0.005
    conditions: dict = field(default_factory=dict)   # ConditionConfig.to_dict(); empty: cond_parts go to the field as they are
    field: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["center"] = list(self.center)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NeRFConfig":
        d = dict(d)
        d["center"] = tuple(d["center"])
        return cls(**d)


#: rays per ``render`` call from which early ray termination is on by default (4 frames of 128^2)
WINDOW_MIN_RAYS = 1 << 16


def default_window(n_rays: int) -> int:
    """The early-termination window ``render`` uses for a call of n_rays rays when none is given."""
    return 16 if n_rays >= WINDOW_MIN_RAYS else 0


def per_sample_codes(codes: Tensor, frame: Tensor) -> Tensor:
    """codes (B, c) of the frames, frame (N,) the frame of each sample -> (N, c).

    With a gradient to carry and samples grouped by frame (``render`` orders them so), each frame's
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


class TalkingNeRF(nn.Module):
    """Sampler + field + compositor + H_u. ``field``: a field to plug in (default: the
    ``ConditionalField`` that ``cfg.field`` describes, which is what a checkpoint rebuilds).

    The per-frame condition vector the scene stores has the layout ``cfg.cond_parts``; with
    ``cfg.conditions`` (audio parts, ``talklib.condition``) a ``Conditioner`` turns it into what the field
    sees (AD-NeRF's audio net and attention); without, it goes to the field as it is.
    """

    def __init__(self, cfg: NeRFConfig, field: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.spec = ConditionSpec(dict(cfg.cond_parts))
        ccfg = ConditionConfig(**cfg.conditions) if cfg.conditions else None
        if ccfg is not None and ccfg.raw_layout() != dict(cfg.cond_parts):
            raise ValueError(f"cond_parts {dict(cfg.cond_parts)} do not match the conditions' layout {ccfg.raw_layout()}")
        self.conditioner = Conditioner(ccfg) if ccfg is not None else None
        field_dim = ccfg.out_dim if ccfg is not None else self.spec.dim
        # SH lighting (the part named f_illu, packed last: talklib.condition.spec) enters the colour linearly
        illu = int(cfg.cond_parts.get("f_illu", 0))
        if illu and list(cfg.cond_parts)[-1] != "f_illu":
            raise ValueError(f"f_illu must be the last condition part (talklib.condition packs it last): {dict(cfg.cond_parts)}")
        fcfg = FieldConfig.from_dict({**FieldConfig(cond_dim=field_dim).to_dict(), "illu_dim": illu,
                                      **cfg.field, "cond_dim": field_dim})
        self.cfg.field = fcfg.to_dict()
        self.field = field if field is not None else ConditionalField(fcfg)
        self.upsampler = Upsampler(fcfg.feat_dim, cfg.upsample, cfg.up_hidden)
        self.occupancy = OccupancyGrid(cfg.occ_res)
        self.register_buffer("center", torch.tensor(cfg.center, dtype=torch.float32))
        self.register_buffer("cond_mean", torch.zeros(self.spec.dim))
        self.register_buffer("cond_std", torch.ones(self.spec.dim))

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups: the field's own (``field.param_groups``), then everything else at ``lr``."""
        groups = self.field.param_groups(lr)
        mine = {id(p) for g in groups for p in g["params"]}
        return groups + [{"params": [p for p in self.parameters() if id(p) not in mine], "lr": lr}]

    def regularizer(self) -> Tensor:
        """The field's regulariser (tri-plane smoothness for ``ConditionalField``)."""
        return self.field.regularizer()

    @torch.no_grad()
    def set_condition_stats(self, cond: Tensor) -> None:
        """Normalise conditions by the training set's mean and std (cond: (N, cond_dim))."""
        self.cond_mean.copy_(cond.mean(dim=0))
        self.cond_std.copy_(cond.std(dim=0, unbiased=False).clamp(min=1e-3) if cond.shape[0] > 1
                            else torch.ones_like(self.cond_std))
        k = self.field.cfg.illu_dim   # raw SH lighting: the colour is linear in it, keep its units
        if k:
            self.cond_mean[-k:] = 0.0
            self.cond_std[-k:] = 1.0

    def codes(self, cond: Tensor) -> Tensor:
        """Per-frame condition codes (B, field.code_dim) from the stored conditions (B, cond_dim):
        normalised, through the conditioner (audio parts -> code) if any, then the field's condition MLP."""
        x = (cond - self.cond_mean) / self.cond_std
        if self.conditioner is not None:
            x = self.conditioner(x)
        return self.field.encode_condition(x)

    # ---- configuration -------------------------------------------------------------------------
    def config(self) -> dict:
        return self.cfg.to_dict()

    @property
    def sigma_threshold(self) -> float:
        """Density under which a sample is skippable: alpha = occ_alpha at the typical step."""
        step = 2.0 * self.cfg.radius * math.sqrt(3.0) / self.cfg.n_samples
        return -math.log(1.0 - self.cfg.occ_alpha) / step

    @torch.no_grad()
    def update_occupancy(self, cond: Tensor, generator: torch.Generator | None = None) -> float:
        """Occupancy over the conditions cond (K, cond_dim); returns the occupied fraction."""
        codes = self.codes(cond)
        frac = self.occupancy.update(self.field.density, codes, self.sigma_threshold, generator=generator)
        if frac == 0.0:  # an empty grid would stop all gradients for good: start over from a full one
            self.occupancy.occupied.fill_(True)
            frac = 1.0
        return frac

    # ---- rendering -----------------------------------------------------------------------------
    def compile_upsampler(self) -> None:
        """Run H_u through ``torch.compile`` in ``render`` from now on (for long renders on a GPU:
        Inductor fuses the activations, pixel shuffles and layout changes around the convolutions;
        the first call of each batch size compiles, some seconds). Not saved with checkpoints."""
        object.__setattr__(self, "_upsampler_compiled", torch.compile(self.upsampler, dynamic=False))

    def can_fuse(self, device: torch.device) -> bool:
        """True when ``render`` can use the fused renderer here: CUDA with Triton, no gradient
        wanted, and a model ``march_triton.unsupported`` accepts."""
        if torch.is_grad_enabled() or not triton_available(device):
            return False
        from talklib.nerf.march_triton import unsupported

        return unsupported(self) is None

    def render_rays(self, rays_o: Tensor, rays_d: Tensor, codes: Tensor, frame_of_ray: Tensor,
                    mode: str = "reference", perturb: bool = False, generator: torch.Generator | None = None,
                    half: bool = False, depth: bool = False, window: int = 16) -> tuple[Tensor, Tensor]:
        """Composite features along rays (canonical frame).

        rays_o, rays_d: (R, 3); codes: (B, cond_code) per frame; frame_of_ray: (R,) long.
        mode: ``reference`` (every sample inside the box, PyTorch compositing) or ``fast``
        (occupancy-grid skipping, compositing by ``composite(backend="auto")``: Triton on CUDA, and
        early ray termination: first the ``window`` samples from each ray's first occupied one; only
        rays still transparent after them (T > 1e-4) go on, composited behind with weight T — Eq. (5)
        is split exactly, C = C_front + T_front * C_back; window 0: all occupied samples at once).
        Returns features (R, C) and opacity (R,); with ``depth`` one more feature channel, the
        expected ray distance sum_i w_i t_i.
        """
        R, S = rays_o.shape[0], self.cfg.n_samples
        tn, tf = ray_box(rays_o, rays_d, self.center, self.cfg.radius, self.cfg.near, self.cfg.far)
        t, deltas = stratified_samples(tn, tf, S, generator=generator, perturb=perturb)
        pts = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
        u = (pts - self.center) / self.cfg.radius
        valid = (deltas > 0) & (u.abs() <= 1.0).all(dim=-1)
        # The model's density is zero in empty grid cells (as in Instant-NGP): the reference path
        # evaluates every sample and masks, the fast path evaluates only the occupied ones.
        occ = self.occupancy.query(u) & valid
        if mode == "reference":
            sigma, feat = self._samples(u, rays_d, codes, frame_of_ray, valid, half)
            return self._composite(sigma * occ, feat, t, deltas, depth, "reference")
        if mode != "fast":
            raise ValueError(f"render mode {mode!r}: use reference or fast")
        front = occ
        if window > 0:
            idx = torch.arange(S, device=occ.device)
            first = torch.where(occ.any(dim=1), occ.to(torch.uint8).argmax(dim=1), S)
            front = occ & (idx < first[:, None] + window)
        sigma, feat = self._samples(u, rays_d, codes, frame_of_ray, front, half)
        f, a = self._composite(sigma, feat, t, deltas, depth, "auto")
        back = occ & ~front
        rows = (((1.0 - a) > 1e-4) & back.any(dim=1)).nonzero().squeeze(1)
        if rows.numel():
            s2, f2 = self._samples(u[rows], rays_d[rows], codes, frame_of_ray[rows], back[rows], half)
            g, b = self._composite(s2, f2, t[rows], deltas[rows], depth, "auto")
            T = 1.0 - a[rows]
            f = f.index_add(0, rows, T[:, None] * g)
            a = a.index_add(0, rows, T * b)
        return f, a

    def _samples(self, u: Tensor, rays_d: Tensor, codes: Tensor, frame_of_ray: Tensor, mask: Tensor,
                 half: bool) -> tuple[Tensor, Tensor]:
        """The field at the samples where mask (R, S) is True -> dense sigma (R, S), features (R, S, C) (0 elsewhere)."""
        R, S = mask.shape
        sel = mask.reshape(-1).nonzero().squeeze(1)
        ray_of = sel // S
        with torch.autocast(u.device.type, dtype=torch.bfloat16, enabled=half):
            z, sig = self.field(u.reshape(-1, 3)[sel], rays_d[ray_of], per_sample_codes(codes, frame_of_ray[ray_of]))
        C = z.shape[-1]
        sigma = torch.zeros(R * S, device=u.device, dtype=torch.float32).index_copy(0, sel, sig.float())
        feat = torch.zeros(R * S, C, device=u.device, dtype=torch.float32).index_copy(0, sel, z.float())
        return sigma.view(R, S), feat.view(R, S, C)

    def _composite(self, sigma: Tensor, feat: Tensor, t: Tensor, deltas: Tensor, depth: bool,
                   backend: str) -> tuple[Tensor, Tensor]:
        """Eq. (5) over (R, S) samples (+ the depth channel); densities are per canonical unit length,
        so spacings are measured in units of the box half-size."""
        if depth:
            feat = torch.cat([feat, t[..., None]], dim=-1)
        return composite(sigma, feat, deltas / self.cfg.radius, backend=backend)

    def render(self, cond: Tensor, c2w: Tensor, focal: float, cx: float, cy: float, H: int, W: int,
               bg: Tensor, head_pose: Tensor | None = None, mode: str = "reference", perturb: bool = False,
               generator: torch.Generator | None = None, half: bool = False, chunk: int = 1 << 17,
               depth: bool = False, window: int | None = None, fused: bool | None = None) -> dict:
        """Render B frames.

        cond: (B, cond_dim); c2w: (B, 4, 4) cameras at full-resolution intrinsics (focal, cx, cy);
        bg: (H, W, 3) or (B, H, W, 3) background in [0, 1]; head_pose: optional (B, 4, 4) head-to-world.
        window: the fast path's early-termination window (``render_rays``); None picks 16 for calls of
        at least ``WINDOW_MIN_RAYS`` rays and 0 below: on a GPU the window paid at 8 frames per call
        and not at one (benchmarks/RESULTS.md, section "The training step", "The full speaker, again").
        fused: draw the fast path with the fused renderer (``talklib.nerf.march_triton``: ray
        marching, field and Eq. (5) in two Triton kernels, fp16 products whatever ``half`` says, a ray
        stops at T <= 1e-4); None uses it whenever it can (``can_fuse``: CUDA with Triton, no
        gradient, no depth, no perturbation, a model it supports).
        Returns {"rgb": (B, H, W, 3), "acc": (B, h, w)} with h = H / upsample, and with ``depth``
        "depth": (B, h, w), the expected ray distance sum_i w_i t_i (as far as the opacity reaches).
        """
        f = self.cfg.upsample
        if H % f or W % f:
            raise ValueError(f"image size {H}x{W} is not a multiple of the upsampling factor {f}")
        B, h, w = c2w.shape[0], H // f, W // f
        o, d = camera_rays(c2w, focal / f, cx / f, cy / f, h, w)
        if head_pose is not None:
            o, d = to_canonical(o, d, head_pose)
        codes = self.codes(cond)
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)
        if fused is None:
            fused = mode == "fast" and self.can_fuse(o.device) and not depth and not perturb
        elif fused and (mode != "fast" or depth or perturb):
            raise ValueError("fused=True draws the fast path only, without depth or perturbation")
        if fused:   # the fused renderer: march + field + Eq. (5) (talklib.nerf.march_triton)
            from talklib.nerf.march_triton import march

            feat, acc = march(self, o, d, codes, h * w)
            feats, accs = [feat], [acc]
        else:
            frame = torch.arange(B, device=c2w.device).repeat_interleave(h * w)
            if window is None:
                window = default_window(o.shape[0])
            feats, accs = [], []
            for s in range(0, o.shape[0], chunk):
                fe, ac = self.render_rays(o[s:s + chunk], d[s:s + chunk], codes, frame[s:s + chunk],
                                          mode=mode, perturb=perturb, generator=generator, half=half, depth=depth,
                                          window=window)
                feats.append(fe)
                accs.append(ac)
        feat = torch.cat(feats).view(B, h, w, -1).permute(0, 3, 1, 2)
        dmap = None
        if depth:
            feat, dmap = feat[:, :-1], feat[:, -1]
        acc = torch.cat(accs).view(B, 1, h, w)
        up = self.__dict__.get("_upsampler_compiled") if not torch.is_grad_enabled() else None
        with torch.autocast(c2w.device.type, dtype=torch.bfloat16, enabled=half):
            fg = (up if up is not None else self.upsampler)(feat)
        fg = fg.float()
        acc_up = acc if f == 1 else F.interpolate(acc, scale_factor=f, mode="bilinear", align_corners=False)
        bg = bg.to(fg.dtype)
        bg = bg.unsqueeze(0) if bg.dim() == 3 else bg
        rgb = fg + (1.0 - acc_up) * bg.permute(0, 3, 1, 2)
        out = {"rgb": rgb.permute(0, 2, 3, 1), "acc": acc[:, 0]}
        if depth:
            out["depth"] = dmap
        return out
