"""3D prior extraction (NeRF-3DTalker §II.B): a learned image -> 3DMM expression regressor, f_exp-aud.

NeRF-3DTalker extracts f_exp-aud (79-d) from the generated Lip-wav images with a 3DMM reconstruction
network (Deep3DFaceRecon, the paper's "3D Prior Extraction"). **Stand-in**: Deep3DFaceRecon's weights need
ImageNet pre-training and a registration-gated BFM, so ``ExpRegressor`` is a small CNN trained here on
renders of the synthetic speaker, whose expression code is known for every frame: the mouth crop (the lip
region the Lip-wav images show, ``talklib.sync.crops``) -> the 79 expression coefficients. Each crop is
standardised per colour channel first (as the lip-sync expert's input), so lighting changes do not read
as expression.

``training_renders`` makes its material: expressions whose speech components (``MOUTH_COMPONENTS``) come
from one frame of the corpus and everything else from another, rendered on the speaker, so that the mouth
it learns to read does not come with the blinks, brows and smile that happened to go with it. What a mouth
crop cannot show (blinks, brows, most unnamed components) it cannot predict and returns near the training
mean: f_exp-aud keeps what the lips say, which is the point of extracting it from Lip-wav images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.errors import UserError
from talklib.runtime import cosine_lr


@dataclass(frozen=True)
class RegressorConfig:
    crop_h: int = 24
    crop_w: int = 40
    out_dim: int = 79       # the expression vector f_exp
    width: int = 16


def _standardise(x: Tensor) -> Tensor:
    """Per crop and colour channel: zero mean, unit variance over the pixels."""
    m = x.mean(dim=(2, 3), keepdim=True)
    s = x.std(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    return (x - m) / s


class ExpRegressor(nn.Module):
    """Crops (B, 3, h, w) in [0, 1] -> expression (B, out_dim), in the units of ``gt/exp.npy``."""

    def __init__(self, cfg: RegressorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or RegressorConfig()
        w = cfg.width

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.net = nn.Sequential(block(3, w, 1), block(w, 2 * w, 2), block(2 * w, 2 * w, 1), block(2 * w, 4 * w, 2),
                                 block(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4 * w, 4 * w), nn.ReLU(), nn.Linear(4 * w, cfg.out_dim))
        self.register_buffer("mean", torch.zeros(cfg.out_dim))
        self.register_buffer("std", torch.ones(cfg.out_dim))

    def forward(self, crops: Tensor) -> Tensor:
        return self.net(_standardise(crops)) * self.std + self.mean


def training_renders(exp_pool: np.ndarray, identity_clip, n: int, cfg, rng: np.random.Generator,
                     device=None) -> tuple[np.ndarray, np.ndarray]:
    """n mouth crops (n, h, w, 3) uint8, cut as the lip-sync expert's ``cfg`` (a ``SyncConfig``) cuts them,
    and their expressions (n, 79): the speech components of a
    random row of ``exp_pool`` (true expressions, (N, 79)), the rest of another random row, rendered on
    ``identity_clip``'s identity with its head pose and lighting cycled (``talklib.sync.corpus``)."""
    from talklib.speaker.visemes import MOUTH_COMPONENTS
    from talklib.data.dataset import EXP_NAMES
    from talklib.sync.corpus import render_expressions
    from talklib.sync.train import centre_of, margin_crops

    pool = np.asarray(exp_pool, np.float32)
    if len(pool) < 2:
        raise UserError(f"{len(pool)} expression rows to mix: give at least 2")
    speech = [EXP_NAMES.index(c) for c in MOUTH_COMPONENTS]
    exp = pool[rng.integers(0, len(pool), n)].copy()
    exp[:, speech] = pool[rng.integers(0, len(pool), n)][:, speech]
    frames, lmk = render_expressions(exp, identity_clip, device)
    return np.ascontiguousarray(centre_of(margin_crops(frames, lmk, cfg), cfg)), exp


def _to_tensor(crops: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(crops), (0, 3, 1, 2)), np.float32) / 255.0)


def train_regressor(model: ExpRegressor, crops: np.ndarray, exp: np.ndarray, steps: int, batch: int = 64,
                    lr: float = 3e-3, seed: int = 0, ckpt: str | Path | None = None, ckpt_every: int = 200,
                    progress: bool = True) -> list[dict]:
    """Fit crops (N, h, w, 3) uint8 -> exp (N, out_dim) by MSE on the standardised coefficients (each
    coefficient weighs the same, whatever its spread). Resumable through ``ckpt``. Returns [{"step", "mse"}]."""
    crops, exp = np.asarray(crops), np.asarray(exp, np.float32)
    if len(crops) != len(exp) or len(crops) < 2:
        raise UserError(f"{len(crops)} crops and {len(exp)} expression rows: give one row per crop, at least 2")
    if crops.shape[1:3] != (model.cfg.crop_h, model.cfg.crop_w) or exp.shape[1] != model.cfg.out_dim:
        raise UserError(f"crops {crops.shape[1:3]} / expression width {exp.shape[1]} do not fit the regressor "
                        f"({model.cfg.crop_h}x{model.cfg.crop_w} -> {model.cfg.out_dim})")
    with torch.no_grad():
        model.mean.copy_(torch.from_numpy(exp.mean(0)))
        model.std.copy_(torch.from_numpy(exp.std(0)).clamp(min=1e-3))
    x_all, y_all = _to_tensor(crops), torch.from_numpy(exp)
    opt = torch.optim.Adam(model.net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    settings = {"model": asdict(model.cfg), "steps": steps, "batch": batch, "lr": lr, "seed": seed, "n": len(crops)}
    start, history = (checkpoint.resume_training(ckpt, "expression-regressor training state", settings, model, opt,
                                                 {"rng": rng}) if ckpt is not None else (0, []))
    model.to(memory_format=torch.channels_last).train()     # NHWC: faster convolutions on CPU
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="image -> 3DMM regressor", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        i = torch.from_numpy(rng.integers(0, len(crops), batch))
        pred = model.net(_standardise(x_all[i]).contiguous(memory_format=torch.channels_last))
        loss = ((pred - (y_all[i] - model.mean) / model.std) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"step": step + 1, "mse": float(loss.detach())})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, model, opt, step + 1, history, {"rng": rng})
    model.eval()
    return history


@torch.no_grad()
def predict(model: ExpRegressor, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    """Crops (N, h, w, 3) uint8 -> expression (N, out_dim) float32."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(_to_tensor(crops[s:s + batch]).to(dev)).cpu() for s in range(0, len(crops), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.cfg.out_dim), np.float32)


def save_regressor(model: ExpRegressor, path: str | Path) -> Path:
    return checkpoint.save(path, {"config": asdict(model.cfg), "state": model.state_dict()})


def load_regressor(path: str | Path) -> ExpRegressor:
    fix = "give a file written by talklib.condition.prior3d.save_regressor (notebook 06 saves <run_dir>/models/exp_regressor.pt)"
    blob = checkpoint.load(path, "expression regressor", required_keys=("config", "state"), fix=fix)
    try:
        model = ExpRegressor(RegressorConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's expression regressor: {fix}") from None
    return model.eval()
