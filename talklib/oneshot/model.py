"""``S3DNeRF``: the single-shot speech-driven NeRF of S3D-NeRF (Sec. 3, Fig. 2), assembled.

Taught in notebook 09. One forward pass, for a batch of (source image, target camera, audio window):

1. ``encode``: the masked source face -> multi-scale tri-planes (Eq. 1) and their slot-attention
   aggregate F_agg (``encoder``, ``attention``); done once per photo;
2. ``drive``: the mel window -> a_dri, and F_cm = MHCA(F_agg, a_dri) (Eq. 3);
3. ``render``: rays of the *target* camera (head frame, at size / sr_factor) are sampled in the head box
   (``talklib.nerf.sampling``), each point deformed (Eq. 4, ``deform``), looked up in the source's
   tri-planes through the inverse source pose (Eq. 2), decoded to density and features (the tri-plane
   decoder of EG3D) and composited (Eq. 5, ``talklib.nerf.composite``): the coarse inner face;
4. the super-resolution module (``superres``) adds the outer face and background from the source.

No per-person parameter exists anywhere: a new identity is one ``encode`` call, no fitting.

Renderer backends: compositing goes through ``talklib.nerf.composite`` (its fused Triton kernel on a CUDA
device, PyTorch elsewhere). talklib's fused *marching* renderer (``talklib.nerf.march_triton``) evaluates
``TalkingNeRF``'s own field inside its kernel and cannot run this one (a deformation and tri-planes made per
photo), so S3D-NeRF always samples and evaluates in PyTorch; ``benchmarks/oneshot_speed.py`` measures it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib.nerf.composite import composite
from talklib.nerf.rays import camera_rays
from talklib.nerf.sampling import ray_box, stratified_samples
from talklib.oneshot.attention import AudioConv, CrossAttention, SlotAttention, aggregate_levels, heat_map
from talklib.oneshot.deform import Deform, deform_condition_dim
from talklib.oneshot.encoder import AppearanceEncoder, sample_planes, source_coordinates
from talklib.oneshot.superres import SuperResolution

#: the head box in the head frame (metres): it holds the synthetic head of every identity
BOX_CENTER = (0.0, -0.02, 0.02)
BOX_RADIUS = 0.125
#: the middle of the inner face (head frame, metres): the coarse window is centred on its projection
FACE_CENTER = (0.0, -0.015, 0.07)


@dataclass(frozen=True)
class S3DConfig:
    """Every size of the model; the notebook fills it from the ``s3d_*`` parameters."""
    size: int = 64                  # frame size (square), pixels
    sr_factor: int = 2              # the NeRF renders at size / sr_factor
    samples: int = 16               # samples per ray in the head box
    window: int = 24                # the NeRF renders this square of the coarse image, around the face
    plane_channels: int = 8         # C: channels of each plane, every level
    enc_widths: tuple = (32, 48, 64, 96)    # channels of D^0..D^3
    slot_size: int = 8              # H_s = W_s: the aggregated tokens are H_s W_s
    slot_dim: int = 32              # D_slot
    slot_iters: int = 3
    mel_steps: int = 16             # mel steps (50 Hz) of the audio window, centred on the frame
    audio_dim: int = 32             # channels of a_dri
    cm_dim: int = 32                # d of Eq. (3)
    heads: int = 4
    deform_widths: tuple = (48, 24, 12)
    hidden: int = 64                # tri-plane decoder width
    feat_dim: int = 8               # composited channels (3 colour + the rest for the super-resolution)
    sr_width: int = 32
    variant: str = "full"           # Table 3: full, nd, fcd, none (``deform.VARIANTS``)
    box_center: tuple = field(default=BOX_CENTER)
    box_radius: float = BOX_RADIUS

    def check(self) -> "S3DConfig":
        deform_condition_dim(self.variant, 1, 1, 1)     # refuses an unknown variant
        if self.window > self.size // self.sr_factor:
            raise ValueError(f"S3D-NeRF window {self.window} is larger than the coarse image "
                             f"({self.size // self.sr_factor} pixels)")
        if self.size % 2 ** len(self.enc_widths) or self.size % self.sr_factor:
            raise ValueError(f"S3D-NeRF size {self.size} must be a multiple of 2^levels = {2 ** len(self.enc_widths)} "
                             f"and of sr_factor = {self.sr_factor}")
        return self

    @classmethod
    def sized(cls, size: int, sr_factor: int, samples: int, window: int, plane_channels: int, width: int,
              **kw) -> "S3DConfig":
        """The config from the notebook's ``s3d_*`` parameters: ``width`` sets the encoder's D^0..D^3
        (width x 1, 1.5, 2, 3) and the super-resolution's width (width / 2, at least 16)."""
        widths = tuple(int(round(width * f)) for f in (1, 1.5, 2, 3))
        return cls(size=size, sr_factor=sr_factor, samples=samples, window=window,
                   plane_channels=plane_channels, enc_widths=widths, sr_width=max(16, width // 2), **kw).check()

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "S3DConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}).check()


class S3DNeRF(nn.Module):
    """The generator: encoder, cross-modal deformation field, tri-plane decoder, super-resolution."""

    def __init__(self, cfg: S3DConfig):
        super().__init__()
        self.cfg = cfg.check()
        c = cfg
        self.encoder = AppearanceEncoder(tuple(c.enc_widths), c.plane_channels)
        levels = len(c.enc_widths)
        feat = c.plane_channels * levels
        self.slots = SlotAttention(c.slot_size ** 2, c.slot_dim, 3 * c.plane_channels * levels, c.slot_iters)
        self.audio = AudioConv(80, c.audio_dim)
        self.audio_vec = nn.Linear(c.mel_steps * c.audio_dim, c.audio_dim)
        self.cross = CrossAttention(c.slot_dim, c.audio_dim, c.cm_dim, c.heads)
        cond = deform_condition_dim(c.variant, c.audio_dim, c.cm_dim, feat)
        self.deform = Deform(cond, tuple(c.deform_widths)) if c.variant != "none" else None
        dec_in = feat + (c.audio_dim if c.variant == "none" else 0)
        self.decoder = nn.Sequential(nn.Linear(dec_in, c.hidden), nn.Softplus(), nn.Linear(c.hidden, 1 + c.feat_dim))
        self.superres = SuperResolution(c.feat_dim, c.sr_factor, c.sr_width)
        self.register_buffer("center", torch.tensor(c.box_center, dtype=torch.float32), persistent=False)

    # --- 1. the photo -------------------------------------------------------------------------------
    def encode(self, source: Tensor, mask: Tensor, src_c2w: Tensor, focal: float,
               generator: torch.Generator | None = None) -> dict:
        """Eq. (1) and the slot aggregate: source (B, 3, H, W) in [0, 1], inner-face mask (B, 1, H, W),
        src_c2w (B, 4, 4) the source camera in the head frame, focal in pixels at size H.
        Returns the identity: planes, F_agg, and what Eq. (2) needs."""
        planes = self.encoder(torch.cat([source * mask, mask], 1))
        f_agg, _ = self.slots(aggregate_levels(planes, self.cfg.slot_size), generator)
        return {"planes": planes, "f_agg": f_agg, "src_w2c": torch.linalg.inv(src_c2w), "source": source,
                "focal": float(focal)}

    # --- 2. the speech ------------------------------------------------------------------------------
    def drive(self, ident: dict, mel: Tensor) -> dict:
        """a_dri from mel windows (B, mel_steps, 80) and F_cm = MHCA(F_agg, a_dri) (Eq. 3)."""
        a_dri = self.audio(mel)
        f_cm, attn = self.cross(ident["f_agg"], a_dri)
        return {"a_dri": a_dri, "a_vec": self.audio_vec(a_dri.flatten(1)), "f_cm": f_cm, "attn": attn,
                "heat": heat_map(f_cm, self.cfg.slot_size)}

    # --- 3. the field at points ---------------------------------------------------------------------
    def field(self, x: Tensor, ident: dict, drv: dict) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N, 3) head frame, metres -> sigma (B, N) per box unit, features (B, N, feat_dim), Δx (B, N, 3)."""
        c = self.cfg
        size, focal = c.size, ident["focal"]
        coords = lambda p: source_coordinates(p, ident["src_w2c"], focal, size / 2, size / 2, size,  # noqa: E731
                                              self.center, c.box_radius)
        u = (x - self.center) / c.box_radius
        dx = torch.zeros_like(x)
        if self.deform is not None:
            n = x.shape[1]
            a = drv["a_vec"][:, None].expand(-1, n, -1)
            if c.variant == "full":
                uv, _ = coords(x)
                s = c.slot_size
                cm_map = drv["f_cm"].transpose(1, 2).reshape(x.shape[0], c.cm_dim, s, s)
                cm = F.grid_sample(cm_map, uv[:, :, None, :], mode="bilinear", padding_mode="border",
                                   align_corners=False)[..., 0].transpose(1, 2)
                cond = torch.cat([a, cm], -1)
            elif c.variant == "fcd":
                cond = torch.cat([a, sample_planes(ident["planes"], *coords(x))], -1)
            else:
                cond = a
            dx = self.deform(u, cond) * c.box_radius                     # Eq. (4): x~ = x + Δx
        feat = sample_planes(ident["planes"], *coords(x + dx))           # Eq. (2)
        if c.variant == "none":
            feat = torch.cat([feat, drv["a_vec"][:, None].expand(-1, x.shape[1], -1)], -1)
        h = self.decoder(feat)
        sigma = torch.exp(torch.clamp(h[..., 0] - 1.0, max=10.0))
        rgb = torch.sigmoid(h[..., 1:4])
        return sigma, torch.cat([rgb, h[..., 4:]], -1), dx

    # --- 4. rendering -------------------------------------------------------------------------------
    def face_window(self, c2w: Tensor, focal: float) -> Tensor:
        """Top-left (row, col) (B, 2) of the ``window``-square of the coarse image centred on the projection of
        the inner face's middle (``FACE_CENTER``) through cameras c2w (B, 4, 4) (head frame); focal at full size."""
        c = self.cfg
        h, k = c.size // c.sr_factor, c.window
        p = torch.tensor(FACE_CENTER, device=c2w.device, dtype=c2w.dtype)
        xc = (p - c2w[:, :3, 3])[:, None, :] @ c2w[:, :3, :3]          # camera frame (B, 1, 3)
        f = focal / c.sr_factor
        col = f * xc[:, 0, 0] / (-xc[:, 0, 2]) + h / 2
        row = h / 2 - f * xc[:, 0, 1] / (-xc[:, 0, 2])
        tl = torch.stack([row, col], 1) - k / 2
        return tl.round().long().clamp(0, h - k)

    def render(self, ident: dict, drv: dict, tar_c2w: Tensor, perturb: bool = False,
               generator: torch.Generator | None = None, backend: str = "auto") -> dict:
        """Eq. (5) at size / sr_factor, then the super-resolution. tar_c2w (B, 4, 4) target cameras (head frame).

        The NeRF draws only the inner face (the coarse half of the coarse-to-fine strategy): the rays of the
        ``window``-square of the coarse image around the face (``face_window``), as AD-NeRF samples its rays in
        the face box; the coarse image is 0 (no density) elsewhere, in training and rendering alike. Returns
        coarse (B, feat_dim, h, h), acc (B, 1, h, h), fine (B, 3, size, size), dx2 (mean |Δx|^2 in box units,
        for L_deform)."""
        c = self.cfg
        h = c.size // c.sr_factor
        f = ident["focal"] / c.sr_factor
        o, d = camera_rays(tar_c2w, f, h / 2, h / 2, h, h)              # (B, h*h, 3)
        b = o.shape[0]
        window = self.face_window(tar_c2w, ident["focal"])
        k = c.window
        rows = window[:, 0, None, None] + torch.arange(k, device=o.device)[None, :, None]
        cols = window[:, 1, None, None] + torch.arange(k, device=o.device)[None, None, :]
        idx = (rows * h + cols).reshape(b, -1)                          # (B, k*k)
        o = torch.gather(o, 1, idx[..., None].expand(-1, -1, 3))
        d = torch.gather(d, 1, idx[..., None].expand(-1, -1, 3))
        r = o.shape[1]
        tn, tf = ray_box(o, d, self.center, c.box_radius, 0.0, 1e3)
        t, deltas = stratified_samples(tn.reshape(-1), torch.maximum(tf, tn).reshape(-1), c.samples,
                                       generator=generator, perturb=perturb)
        pts = o.reshape(-1, 1, 3) + d.reshape(-1, 1, 3) * t[..., None]   # (B R, S, 3)
        sigma, feat, dx = self.field(pts.reshape(b, -1, 3), ident, drv)
        s = c.samples
        out, acc = composite(sigma.reshape(b * r, s), feat.reshape(b * r, s, -1),
                             deltas / c.box_radius, backend=backend)
        out = torch.cat([out, acc[:, None]], -1).reshape(b, r, -1)
        out = out.new_zeros(b, h * h, out.shape[-1]).scatter(1, idx[..., None].expand(-1, -1, out.shape[-1]), out)
        img = out.reshape(b, h, h, -1).permute(0, 3, 1, 2)
        coarse, acc = img[:, :-1], img[:, -1:]
        fine = self.superres(coarse, acc, ident["source"])
        return {"coarse": coarse, "acc": acc, "fine": fine, "dx2": (dx / c.box_radius).pow(2).sum(-1).mean()}

    def forward(self, source, mask, src_c2w, focal, mel, tar_c2w, perturb=False, generator=None) -> dict:
        ident = self.encode(source, mask, src_c2w, focal, generator)
        drv = self.drive(ident, mel)
        out = self.render(ident, drv, tar_c2w, perturb, generator)
        out["heat"] = drv["heat"]
        return out


def expand_identity(ident: dict, n: int) -> dict:
    """One encoded photo repeated for a batch of n target frames."""
    rep = lambda t: t.expand(n, *t.shape[1:])  # noqa: E731
    return {"planes": [rep(p) for p in ident["planes"]], "f_agg": rep(ident["f_agg"]),
            "src_w2c": rep(ident["src_w2c"]), "source": rep(ident["source"]), "focal": ident["focal"]}
