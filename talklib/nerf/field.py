"""The conditional field F(x, d, condition) -> (z, sigma).

The field takes any condition vector; what talklib feeds it today is 3DMM parts only
(``talklib.nerf.scene.from_clip`` builds ``f_exp`` and ``f_illu`` and refuses anything else). The papers'
variants differ by what goes into that vector:
- AD-NeRF / Disentangled-audio NeRF Eq. (7): F(a_c, a_r, a_p, d, x) -> (c, sigma), audio codes
  (not built yet: no dataset path packs audio features into the condition; the next issue adds it);
- NeRF-3DTalker Eq. (4): F(l, P, f_id, f_exp-aud, f_exp-style, f_alb, f_illu) -> (z, sigma), 3DMM
  codes and a feature z instead of a colour;
- DFA-NeRF Eq. (10): F(f, d, x) -> (c, sigma), head pose entering as the view direction d after the
  samples are mapped into canonical head space (``talklib.nerf.rays.to_canonical``).

The condition vector (B, cond_dim) is the concatenation of named parts (``ConditionSpec``); a small
MLP turns it into a per-frame code. Points x in canonical unit coordinates [-1, 1]^3 are (optionally)
moved by a condition-dependent deformation, encoded by a tri-plane grid, and decoded with the code
into density and a geometry feature; the colour/feature head adds the encoded view direction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib.face3d.model import sh_basis
from talklib.nerf.encoding import TriPlaneGrid, positional_dim, positional_encoding




@dataclass
class ConditionSpec:
    """Ordered named parts of the condition vector: ``{"f_exp": 79, "f_id": 100}``."""

    parts: dict[str, int] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return sum(self.parts.values())

    def pack(self, values: dict[str, Tensor]) -> Tensor:
        """Concatenate named parts (each (B, dim_k)) in spec order -> (B, dim)."""
        missing = [k for k in self.parts if k not in values]
        if missing:
            raise ValueError(f"condition parts {missing} missing: the field was built with {list(self.parts)}")
        out = []
        for k, d in self.parts.items():
            v = values[k].reshape(values[k].shape[0], -1)
            if v.shape[1] != d:
                raise ValueError(f"condition part {k} has {v.shape[1]} numbers, the field expects {d}")
            out.append(v)
        return torch.cat(out, dim=1)


@dataclass
class FieldConfig:
    cond_dim: int
    cond_code: int = 32
    plane_res: tuple[int, ...] = (32, 64, 128)
    plane_channels: int = 8
    hidden: int = 64
    geo_dim: int = 15
    feat_dim: int = 3
    dir_freqs: int = 2
    view_dir: bool = True      # False: colour independent of the view direction (Lambertian scenes)
    deform: bool = True
    deform_freqs: int = 4
    deform_scale: float = 0.1
    illu_dim: int = 0          # trailing condition numbers that are SH lighting (27 = 9 x RGB), applied linearly

    def to_dict(self) -> dict:
        d = asdict(self)
        d["plane_res"] = list(self.plane_res)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FieldConfig":
        d = dict(d)
        d["plane_res"] = tuple(d["plane_res"])
        return cls(**d)


class ConditionalField(nn.Module):
    """F(x, d, code) -> (z, sigma).

    x: (N, 3) canonical points in [-1, 1]^3, d: (N, 3) unit view directions (canonical frame),
    code: (N, cond_code) per-sample condition codes (``encode_condition`` of the frame, gathered).
    z: (N, feat_dim) with channels 0..2 an RGB colour in [0, 1] and the rest free features;
    sigma: (N,) non-negative density (per canonical unit length).
    """

    def __init__(self, cfg: FieldConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        if cfg.illu_dim not in (0, 27) or cfg.illu_dim > cfg.cond_dim:
            raise ValueError(f"illu_dim {cfg.illu_dim}: 0 or 27 (9 SH coefficients x RGB, the last condition part)")
        self.cond_net = nn.Sequential(nn.Linear(max(cfg.cond_dim - cfg.illu_dim, 1), h), nn.SiLU(),
                                      nn.Linear(h, cfg.cond_code))
        if cfg.deform:
            din = positional_dim(3, cfg.deform_freqs) + cfg.cond_code
            self.deform_net = nn.Sequential(nn.Linear(din, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 3))
            nn.init.zeros_(self.deform_net[-1].weight)
            nn.init.zeros_(self.deform_net[-1].bias)
        self.grid = TriPlaneGrid(cfg.plane_res, cfg.plane_channels)
        self.density_net = nn.Sequential(
            nn.Linear(self.grid.out_dim + cfg.cond_code, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
            nn.Linear(h, 1 + cfg.geo_dim),
        )
        nn.init.constant_(self.density_net[-1].bias[:1], 0.0)
        ddim = positional_dim(3, cfg.dir_freqs) if cfg.view_dir else 0
        self.color_net = nn.Sequential(
            nn.Linear(cfg.geo_dim + ddim + cfg.cond_code, h), nn.SiLU(),
            nn.Linear(h, cfg.feat_dim + (3 if cfg.illu_dim else 0)),
        )

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups: the tri-planes learn at twice ``lr`` (grids want larger steps than MLPs);
        the field's MLPs are left to the caller's default group."""
        return [{"params": list(self.grid.parameters()), "lr": 2 * lr}]

    def regularizer(self) -> Tensor:
        """Total-variation smoothness of the tri-planes (``TriPlaneGrid.smoothness``)."""
        return self.grid.smoothness()

    @property
    def code_dim(self) -> int:
        """Size of a per-frame code: the learned code, then the raw SH lighting (illu_dim) if any."""
        return self.cfg.cond_code + self.cfg.illu_dim

    def encode_condition(self, cond: Tensor) -> Tensor:
        """cond: (B, cond_dim) -> per-frame code (B, code_dim): MLP code of the non-lighting part,
        followed by the lighting part unchanged (it enters the colour linearly, see ``forward``)."""
        k = self.cfg.cond_dim - self.cfg.illu_dim
        rest = cond[:, :k] if k > 0 else torch.zeros(cond.shape[0], 1, device=cond.device, dtype=cond.dtype)
        return torch.cat([self.cond_net(rest), cond[:, k:k + self.cfg.illu_dim]], dim=-1)

    def _geometry(self, x: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        code = code[:, :self.cfg.cond_code]
        if self.cfg.deform:
            off = self.deform_net(torch.cat([positional_encoding(x, self.cfg.deform_freqs), code], dim=-1))
            x = x + self.cfg.deform_scale * torch.tanh(off)
        h = self.density_net(torch.cat([self.grid(x), code], dim=-1))
        sigma = torch.exp(torch.clamp(h[:, 0], max=12.0))
        return sigma, h[:, 1:]

    def density(self, x: Tensor, code: Tensor) -> Tensor:
        """sigma only (for the occupancy grid): x (N, 3), code (N, cond_code) -> (N,)."""
        return self._geometry(x, code)[0]

    def forward(self, x: Tensor, d: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        sigma, geo = self._geometry(x, code)
        c = self.cfg.cond_code
        dirs = [positional_encoding(d, self.cfg.dir_freqs)] if self.cfg.view_dir else []
        raw = self.color_net(torch.cat([geo, *dirs, code[:, :c]], dim=-1))
        rgb = torch.sigmoid(raw[:, :3])
        if self.cfg.illu_dim:
            # Lambertian SH shading (NeRF-3DTalker's f_illu, the 3DMM's irradiance model): colour =
            # albedo(x) * sum_k Y_k(n(x)) L_ck with a learned unit normal n(x) (canonical frame, which
            # the lighting's frame matches up to the small head rotations). Linear in the lighting L,
            # so lighting never seen in training extrapolates.
            fd = self.cfg.feat_dim
            r = raw[:, fd:fd + 3].float()   # the normal starts out facing the front camera (+z)
            n = F.normalize(torch.stack([r[:, 0], r[:, 1], r[:, 2] + 1.0], dim=-1), dim=-1, eps=1e-6)
            L = code[:, c:c + self.cfg.illu_dim].float().reshape(-1, 3, 9)
            rgb = rgb * (L * sh_basis(n)[:, None, :]).sum(-1).to(rgb.dtype)
        z = torch.cat([rgb, raw[:, 3:self.cfg.feat_dim]], dim=-1)
        return z, sigma
