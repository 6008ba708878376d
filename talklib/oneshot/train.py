"""Training S3D-NeRF: the losses of Eq. (8)-(9) and a trainer that resumes after ``kill -9``.

Taught in notebook 09, section 9.7.

    L = L_pix + λ_per L_per + λ_adv L_adv + λ_sync^gen L_sync^gen + λ_deform L_deform          (Eq. 9)

with the paper's λ_per = 0.01, λ_adv = 1, λ_sync^gen = 0.5, λ_deform = 0.001 (``TrainConfig``):

- L_pix: the l2 loss, on the coarse inner face (against the masked target at the coarse size) and on
  the fine frame (against the whole target);
- L_per: a perceptual loss on both. The paper's feature network is not named (VGG on ImageNet is the
  usual one) and no ImageNet weights can be downloaded here, so ``PerceptualLoss`` compares the
  activations of the four conv layers of **notebook 07's AU encoder** (``AUEncoder.conv_features``), a face
  network trained here on the synthetic speaker's faces: a stand-in that knows faces, not the world;
- L_adv: StyleGAN2's non-saturating loss against ``discriminator.Discriminator`` on the fine frame
  (one discriminator at the output size; the coarse face has none here), R1 every ``r1_every`` steps.
  It joins after ``adv_from`` of the steps (our schedule: a small run needs a face before it needs a GAN);
- L_sync^gen, Eq. (8): every ``sync_every``-th batch is T consecutive frames of one identity; their mouths
  (cropped through the ground truth's boxes) and the true audio go through **notebook 04's frozen lip-sync
  expert** (``talklib.sync``), and 1 - cos(e_l^gen, e_gt) is the loss (``generator_sync_loss``);
- L_deform: the mean squared deformation |Δx|^2 (box units).

One Adam optimiser holds the generator and the discriminator (``nn.ModuleDict``), so the one
checkpoint format of ``talklib.checkpoint.save_training`` keeps both, with the random generators:
a killed run resumes and takes the very steps the uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib import checkpoint
from talklib.oneshot.data import FaceSet, coarse_target, crop_mouths, expert_inputs, sample_batch
from talklib.oneshot.discriminator import Discriminator, discriminator_loss, generator_adv_loss, r1_penalty
from talklib.oneshot.model import S3DNeRF
from talklib.runtime import cosine_lr
from talklib.sync.losses import generator_sync_loss


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch: int = 4
    lr: float = 2e-3
    per_weight: float = 0.01        # λ_per
    adv_weight: float = 1.0         # λ_adv
    sync_weight: float = 0.5        # λ_sync^gen (0 = Table 3's "w/o Lip Sync")
    deform_weight: float = 0.001    # λ_deform
    adv_from: float = 0.5           # fraction of the steps before L_adv and the discriminator join
    sync_every: int = 4             # every k-th batch is a T-frame window for L_sync (0 = never)
    r1_gamma: float = 1.0
    r1_every: int = 16
    disc_width: int = 32
    seed: int = 0
    ckpt_every: int = 50


class PerceptualLoss(nn.Module):
    """L_per: mean squared distance of channel-normalised activations (as LPIPS, without its learned
    weights) of a frozen feature network ``net`` with a ``conv_features(images) -> list`` method."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, pred: Tensor, ref: Tensor) -> Tensor:
        loss = pred.new_zeros(())
        for a, b in zip(self.net.conv_features(pred), self.net.conv_features(ref)):
            na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-6)
            nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-6)
            loss = loss + (na - nb).pow(2).sum(1).mean()
        return loss


def generator_losses(model: S3DNeRF, batch: dict, cfg: TrainConfig, perceptual: PerceptualLoss | None,
                     disc: Discriminator | None, expert, sets: list[FaceSet] | None, gen: torch.Generator,
                     use_adv: bool) -> tuple[Tensor, dict, dict]:
    """Eq. (9) for one batch: (total, {term: value}, the model's output)."""
    mc = model.cfg
    out = model(batch["source"], batch["source_mask"], batch["source_c2w"], batch["focal"], batch["mel"],
                batch["target_c2w"], perturb=True, generator=gen)
    tgt, tmask = batch["target"], batch["target_mask"]
    coarse_ref = coarse_target(tgt, tmask, mc.sr_factor)
    terms = {"pix": F.mse_loss(out["coarse"][:, :3], coarse_ref) + F.mse_loss(out["fine"], tgt),
             "deform": out["dx2"]}
    if perceptual is not None and cfg.per_weight > 0:
        up = lambda x: F.interpolate(x, scale_factor=mc.sr_factor, mode="bilinear", align_corners=False)  # noqa: E731
        terms["per"] = perceptual(out["fine"], tgt) + perceptual(up(out["coarse"][:, :3]), up(coarse_ref))
    if disc is not None and use_adv and cfg.adv_weight > 0:
        terms["adv"] = generator_adv_loss(disc(out["fine"]))
    if expert is not None and "start" in batch and cfg.sync_weight > 0:
        boxes, mel = expert_inputs(sets[batch["set"]], batch["start"], expert.cfg)
        crops = crop_mouths(out["fine"].clamp(0, 1), boxes, expert.cfg.crop_h, expert.cfg.crop_w)
        e_l, e_a = expert(crops[None], mel.to(crops.device))
        terms["sync"] = generator_sync_loss(e_l, e_a)
    weights = {"pix": 1.0, "per": cfg.per_weight, "adv": cfg.adv_weight, "sync": cfg.sync_weight,
               "deform": cfg.deform_weight}
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}, out


def train_s3d(model: S3DNeRF, sets: list[FaceSet], cfg: TrainConfig, perceptual: PerceptualLoss | None = None,
              expert=None, ckpt: str | Path | None = None, progress: bool = True, desc: str = "S3D-NeRF") -> list[dict]:
    """Train ``model`` on the identities ``sets`` for ``cfg.steps`` steps (resuming from ``ckpt`` when it
    holds a run of the same settings); returns the history, one dict of loss terms per step.
    ``expert``: the frozen lip-sync expert (``talklib.sync.model.SyncNet``), or None for no L_sync."""
    from tqdm.auto import tqdm

    dev = next(model.parameters()).device
    disc = Discriminator(model.cfg.size, cfg.disc_width).to(dev)
    both = nn.ModuleDict({"G": model, "D": disc})
    opt = torch.optim.Adam(both.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    if expert is not None:
        expert.eval().requires_grad_(False)
    rng = np.random.default_rng([cfg.seed, 9])
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)   # slot noise, ray jitter
    config = {"model": model.cfg.to_dict(), "train": asdict(cfg), "sets": [s.name for s in sets],
              "perceptual": perceptual is not None, "expert": expert is not None}
    step, history = (checkpoint.resume_training(ckpt, "S3D-NeRF training checkpoint", config, both, opt,
                                                {"np": rng, "torch": gen}) if ckpt else (0, []))
    mc = model.cfg
    adv_start = int(cfg.adv_from * cfg.steps)
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not progress)
    while step < cfg.steps:
        cosine_lr(opt, cfg.lr, step, cfg.steps)
        sync = expert is not None and cfg.sync_every > 0 and cfg.sync_weight > 0 and step % cfg.sync_every == 0
        batch = sample_batch(sets, cfg.batch, rng, mc.mel_steps, sync_frames=expert.cfg.frames if sync else 0)
        use_adv = step >= adv_start
        opt.zero_grad(set_to_none=True)
        loss, terms, out = generator_losses(model, batch, cfg, perceptual, disc, expert, sets, gen, use_adv)
        loss.backward()
        for p in disc.parameters():
            p.grad = None                       # the generator's step leaves D alone
        opt.step()
        if use_adv and cfg.adv_weight > 0:     # the discriminator's step
            opt.zero_grad(set_to_none=True)
            d_loss = discriminator_loss(disc(batch["target"]), disc(out["fine"].detach()))
            if (step - adv_start) % cfg.r1_every == 0:
                d_loss = d_loss + cfg.r1_every * r1_penalty(disc, batch["target"], cfg.r1_gamma)
            d_loss.backward()
            opt.step()
            terms["disc"] = float(d_loss.detach())
        terms["total"] = float(loss.detach())
        history.append(terms)
        step += 1
        bar.update(1)
        if ckpt and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            checkpoint.save_training(ckpt, config, both, opt, step, history, {"np": rng, "torch": gen})
    bar.close()
    return history


KIND = "s3d-nerf"


def save_s3d(model: S3DNeRF, path: str | Path, framing: dict) -> Path:
    """The generator alone (kind, config, weights, and the framing of its training faces that
    ``drive.frame_photo`` crops a user's photo to), atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"kind": KIND, "config": model.cfg.to_dict(), "state": model.state_dict(),
                                  "framing": dict(framing)})


def load_s3d(path: str | Path) -> tuple[S3DNeRF, dict]:
    """(model in eval mode, framing) from ``save_s3d``'s file; one-line errors for another kind of file."""
    from talklib.errors import UserError
    from talklib.oneshot.model import S3DConfig

    fix = "give the S3D-NeRF checkpoint notebook 09 writes (<run_dir>/models/s3d_nerf.pt)"
    blob = checkpoint.load(path, "S3D-NeRF checkpoint", required_keys=("config", "state"), fix=fix)
    if blob.get("kind") != KIND:
        what = f"of kind {blob['kind']!r}" if "kind" in blob else "of another model"
        raise UserError(f"{path} is a checkpoint {what}, not S3D-NeRF's: {fix}")
    try:
        model = S3DNeRF(S3DConfig.from_dict(blob["config"]))
        model.load_state_dict(blob["state"])
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's S3D-NeRF: {fix}") from None
    return model.eval(), dict(blob.get("framing", {}))
