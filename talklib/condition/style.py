"""NeRF-3DTalker's StyleNet and FuseNet, trained with L_exp (Eq. 3 of ``../shared/papers/nerf-3dtalker.md``).

The paper's 3D-prior-aided audio disentanglement splits what drives the face in two 79-d expressions
(Eq. 1): f_exp-aud, read off the Lip-wav images (``lipwav`` + ``prior3d``: speech movement only), and
f_exp-style, which a StyleNet extracts for the speaker. A FuseNet fuses the two into f_gen-exp, and the
whole module is trained against the real frames' expression f_gt-exp:

    L_exp = || f_gen-exp - f_gt-exp ||^2                                   (3)

The paper gives neither network's design. Here (a stand-in, said so in notebook 06):

- ``StyleNet``: a reference clip's expression sequence (T_ref >= ``MIN_REF_FRAMES`` frames, the 3DMM
  fit of a video of the speaker; the synthetic speaker's truth here) -> two temporal convolutions ->
  the mean over time -> f_exp-style (79). One vector per reference clip: a style, not a moment.
- ``FuseNet``: per frame, f_exp-aud of frames t-4 .. t+4 and f_exp-style -> temporal convolutions ->
  f_gen-exp(t) = f_exp-style + residual. The window lets style motion follow the speech (brows go up at
  phrase starts, which f_exp-aud shows as the jaw starting to move).

Trained on the synthetic speaker's own speech re-dressed in many speaking styles
(``talklib.speaker.style``): the speech part is known, the style is known, so what each network carries
can be measured against the truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.errors import UserError
from talklib.runtime import cosine_lr

MIN_REF_FRAMES = 50   # 2 s at 25 fps: a brow raise or two, the smile's level


@dataclass(frozen=True)
class StyleConfig:
    dims: int = 79         # expression numbers (f_exp-aud, f_exp-style, f_gen-exp alike)
    width: int = 64
    window: int = 9        # FuseNet's temporal reach, frames (odd)
    segment: int = 48      # training segment, frames
    ref_frames: int = MIN_REF_FRAMES


class StyleNet(nn.Module):
    """A reference clip's expression (B, T_ref, 79) -> f_exp-style (B, 79)."""

    def __init__(self, cfg: StyleConfig):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(nn.Conv1d(cfg.dims, w, 5, padding=2), nn.GELU(),
                                 nn.Conv1d(w, w, 5, padding=2), nn.GELU())
        self.out = nn.Linear(w, cfg.dims)

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(ref.transpose(1, 2)).mean(2))


class FuseNet(nn.Module):
    """(f_exp-aud (B, T, 79), f_exp-style (B, 79)) -> f_gen-exp (B, T, 79)."""

    def __init__(self, cfg: StyleConfig):
        super().__init__()
        w, k = cfg.width, cfg.window
        self.net = nn.Sequential(nn.Conv1d(2 * cfg.dims, w, k, padding=k // 2), nn.GELU(),
                                 nn.Conv1d(w, w, k, padding=k // 2), nn.GELU(), nn.Conv1d(w, cfg.dims, 1))

    def forward(self, f_aud: torch.Tensor, f_style: torch.Tensor) -> torch.Tensor:
        s = f_style[:, :, None].expand(-1, -1, f_aud.shape[1])
        return f_style[:, None, :] + self.net(torch.cat([f_aud.transpose(1, 2), s], 1)).transpose(1, 2)


class Disentangler(nn.Module):
    """StyleNet + FuseNet: ``forward(f_aud, ref) -> (f_gen-exp, f_exp-style)``."""

    def __init__(self, cfg: StyleConfig):
        super().__init__()
        if cfg.window % 2 == 0 or cfg.window < 1:
            raise UserError(f"FuseNet window {cfg.window} must be an odd number of frames (e.g. 9)")
        self.cfg = cfg
        self.style = StyleNet(cfg)
        self.fuse = FuseNet(cfg)

    def forward(self, f_aud: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_style = self.style(ref)
        return self.fuse(f_aud, f_style), f_style


def l_exp(f_gen: torch.Tensor, f_gt: torch.Tensor) -> torch.Tensor:
    """Eq. (3): the squared distance of the fused expression to the real frames', averaged over numbers."""
    return ((f_gen - f_gt) ** 2).mean()


def check_reference(ref: np.ndarray, what: str = "the reference clip") -> np.ndarray:
    """A reference expression sequence (T_ref, 79), checked: long enough for StyleNet."""
    ref = np.asarray(ref, np.float32)
    if ref.ndim != 2 or ref.shape[1] != 79:
        raise UserError(f"{what} has shape {ref.shape}: StyleNet reads one 79-d expression per frame (T, 79)")
    if ref.shape[0] < MIN_REF_FRAMES:
        raise UserError(f"{what} has {ref.shape[0]} frames, StyleNet needs at least {MIN_REF_FRAMES} "
                        f"({MIN_REF_FRAMES / 25:.0f} s at 25 fps): pass a longer reference clip of the speaker")
    return ref


@dataclass
class StyledSet:
    """Training material: per clip its f_exp-aud (T, 79); per (style, clip) the true expression (T, 79)."""

    f_aud: list[np.ndarray]
    exp: list[list[np.ndarray]]      # exp[s][i]: clip i spoken in style s


def train_disentangler(model: Disentangler, data: StyledSet, steps: int, batch: int = 32, lr: float = 3e-3,
                       seed: int = 0, ckpt=None, ckpt_every: int = 200, progress: bool = True) -> list[dict]:
    """Fit StyleNet + FuseNet with L_exp (Eq. 3). Each sample: a random clip i and style s; FuseNet sees a
    ``segment`` of clip i's f_exp-aud, StyleNet ``ref_frames`` of *another* clip j in the same style (so the
    style cannot be copied from the sentence it must fuse); the target is clip i in style s. Resumable
    through ``ckpt``. Returns [{"step", "l_exp"}]."""
    cfg = model.cfg
    n_clips, n_styles = len(data.f_aud), len(data.exp)
    if n_clips < 2 or n_styles < 1:
        raise UserError(f"{n_clips} clips and {n_styles} styles: StyleNet / FuseNet need at least 2 clips and 1 style")
    short = [i for i, f in enumerate(data.f_aud) if len(f) < max(cfg.segment, cfg.ref_frames)]
    if short:
        raise UserError(f"clips {short} are shorter than {max(cfg.segment, cfg.ref_frames)} frames: "
                        f"drop them or lower the segment")
    dev = next(model.parameters()).device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    settings = {"model": asdict(cfg), "steps": steps, "batch": batch, "lr": lr, "seed": seed,
                "clips": n_clips, "styles": n_styles}
    start, history = (checkpoint.resume_training(ckpt, "StyleNet / FuseNet training state", settings, model, opt,
                                                 {"rng": rng}) if ckpt is not None else (0, []))
    model.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="StyleNet + FuseNet (Eq. 3)",
                     disable=not progress):
        cosine_lr(opt, lr, step, steps)
        aud, gt, ref = [], [], []
        for _ in range(batch):
            s, i = int(rng.integers(n_styles)), int(rng.integers(n_clips))
            j = int((i + 1 + rng.integers(n_clips - 1)) % n_clips)
            a = int(rng.integers(len(data.f_aud[i]) - cfg.segment + 1))
            r = int(rng.integers(len(data.f_aud[j]) - cfg.ref_frames + 1))
            aud.append(data.f_aud[i][a:a + cfg.segment])
            gt.append(data.exp[s][i][a:a + cfg.segment])
            ref.append(data.exp[s][j][r:r + cfg.ref_frames])
        aud, gt, ref = (torch.from_numpy(np.stack(x).astype(np.float32)).to(dev) for x in (aud, gt, ref))
        f_gen, _ = model(aud, ref)
        loss = l_exp(f_gen, gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"step": step + 1, "l_exp": float(loss.detach())})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, model, opt, step + 1, history, {"rng": rng})
    model.eval()
    return history


@torch.no_grad()
def fuse(model: Disentangler, f_aud: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole clip: f_exp-aud (T, 79) and a reference clip's expression (T_ref, 79) -> (f_gen-exp (T, 79),
    f_exp-style (79,))."""
    ref = check_reference(ref)
    f_aud = np.asarray(f_aud, np.float32)
    if f_aud.ndim != 2 or f_aud.shape[1] != model.cfg.dims or len(f_aud) < 1:
        raise UserError(f"f_exp-aud has shape {f_aud.shape}: give one {model.cfg.dims}-d row per frame")
    model.eval()
    dev = next(model.parameters()).device
    f_gen, f_style = model(torch.from_numpy(f_aud)[None].to(dev), torch.from_numpy(ref)[None].to(dev))
    return f_gen[0].cpu().numpy(), f_style[0].cpu().numpy()


def save_disentangler(model: Disentangler, path) -> None:
    checkpoint.save(path, {"kind": "style_fuse", "config": asdict(model.cfg), "state": model.state_dict()})


def load_disentangler(path, map_location="cpu") -> Disentangler:
    blob = checkpoint.load(path, "StyleNet / FuseNet model", map_location, required_keys=("config", "state"))
    model = Disentangler(StyleConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.eval()
