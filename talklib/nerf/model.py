"""The assembled talking-head renderer: conditional field + sampler + compositor + H_u + background.

``TalkingNeRF.render`` draws frames: rays at the low resolution (H/f, W/f), samples clipped to the
canonical head box, field evaluated only where the occupancy grid says so (fast mode) or everywhere
(reference mode), Eq. (5) compositing, H_u upsampling, and the known background behind:

    I = H_u(F) + (1 - up(A)) * background

Which backend draws the rays (PyTorch reference, PyTorch fast, the fused Triton renderer) is decided
in one place, ``talklib.nerf.renderer``.

Everything the model needs to be rebuilt is in ``config`` (a JSON-able dict), saved with checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib.condition.audionet import ConditionConfig, Conditioner
from talklib.nerf import renderer
from talklib.nerf.field import ConditionalField, ConditionSpec, FieldConfig
from talklib.nerf.rays import camera_rays, to_canonical
from talklib.nerf.sampling import OccupancyGrid
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
        """True when ``render`` can use the fused Triton renderer here (``renderer.can_fuse``)."""
        return renderer.can_fuse(self, device)

    def render_rays(self, rays_o: Tensor, rays_d: Tensor, codes: Tensor, frame_of_ray: Tensor,
                    **kw) -> tuple[Tensor, Tensor]:
        """Features and opacity along rays by the PyTorch backends (``renderer.render_rays``)."""
        return renderer.render_rays(self, rays_o, rays_d, codes, frame_of_ray, **kw)

    def render(self, cond: Tensor, c2w: Tensor, focal: float, cx: float, cy: float, H: int, W: int,
               bg: Tensor, head_pose: Tensor | None = None, mode: str = "reference", perturb: bool = False,
               generator: torch.Generator | None = None, half: bool = False, chunk: int = 1 << 17,
               depth: bool = False, window: int | None = None, fused: bool | None = None) -> dict:
        """Render B frames.

        cond: (B, cond_dim); c2w: (B, 4, 4) cameras at full-resolution intrinsics (focal, cx, cy);
        bg: (H, W, 3) or (B, H, W, 3) background in [0, 1]; head_pose: optional (B, 4, 4) head-to-world.
        window: the fast path's early-termination window (``render_rays``); None picks 16 for calls of
        at least ``renderer.WINDOW_MIN_RAYS`` rays and 0 below: on a GPU the window paid at 8 frames per call
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
        feat, acc = renderer.draw(self, o, d, codes, h * w, mode=mode, perturb=perturb, generator=generator,
                                  half=half, chunk=chunk, depth=depth, window=window, fused=fused)
        feat = feat.view(B, h, w, -1).permute(0, 3, 1, 2)
        dmap = None
        if depth:
            feat, dmap = feat[:, :-1], feat[:, -1]
        acc = acc.view(B, 1, h, w)
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
