"""The AU encoder of NeRF-3DTalker's local AU semantic space (Section II.D, Eq. (7)-(8)).

The paper's AU encoder has "four convolutional layers and four fully connected layers" and is
pre-trained to predict the speech-related action units of a face with L_AU = L_bce + L_dice, both
weighted per AU by w_i = (1/r_i) n_AU / sum_j (1/r_j), r_i being how often AU i occurs in the data
(after JAA-Net, the paper's ref. [6]). Its labels come from OpenFace; ours from the synthetic speaker's
ground truth (``talklib.data.dataset``: ``Clip.au_labels`` in the column order of ``AU_NAMES``).

What is \\hat f_AU, the vector the semantic codebook S quantises (Eq. (9))? The paper does not say; here
it is the output of the third fully connected layer, shaped (n_au, au_dim): **one au_dim-vector per AU**,
and the fourth layer reads AU i's logit from its own vector only (a per-AU linear read-out,
``AUEncoder.read_au``). So f_AU_i of Eq. (9) is "the feature of AU i", each of the n_au vectors is snapped
to its nearest entry of S, and the quantised features can be read as AUs by the same read-out (a notebook
can measure what quantisation costs in AU accuracy).

**Lighting, and what we do about it.** The encoder is pre-trained on one clip, the training video, and
read on others whose lighting differs (the synthetic speaker's testA is lit far brighter). Two choices the
paper does not mention keep the light out of the AUs: ``AUEncoder.features`` standardises each image to
zero mean and unit variance before its first layer (a global gain or offset of the light does not reach
the features), and ``train_au_encoder(augment=True)`` trains on frames re-lit at random (gain, gamma,
colour balance, offset) and moved by a pixel or two (``augment_faces``), so the read-out cannot learn the
training clip's light or framing. Notebook 07 measures both on unseen sentences in other light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.data.dataset import AU_NAMES
from talklib.errors import UserError
from talklib.runtime import cosine_lr

#: the ``kind`` an AU-encoder file carries (``save_au_encoder``)
KIND = "au-encoder"


@dataclass(frozen=True)
class AUEncoderConfig:
    """The AU encoder's sizes (Section II.D, the encoder of Eq. (7)-(9))."""

    image_size: int = 64        # square face images, a multiple of 16 (four stride-2 conv layers)
    width: int = 16             # channels of the first conv layer (w, 2w, 4w, 4w)
    n_au: int = len(AU_NAMES)   # AUs predicted (the synthetic speaker knows 10)
    au_dim: int = 16            # size of each AU's feature vector in \hat f_AU (the codebook S's dimension)
    hidden: int = 128           # width of the first two fully connected layers

    def check(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size {self.image_size}: a multiple of 16 (four stride-2 conv layers)")
        if min(self.width, self.n_au, self.au_dim, self.hidden) < 1:
            raise ValueError("width, n_au, au_dim and hidden must all be >= 1")


class AUEncoder(nn.Module):
    """Face images (B, 3, H, W) in [0, 1] -> AU logits (B, n_au); ``features`` gives \\hat f_AU (B, n_au, au_dim).

    Each image is first standardised on its own (zero mean, unit variance over its pixels and channels:
    module docstring, lighting); then four 3x3 stride-2 conv layers (ReLU) and four fully connected layers:
    fc1, fc2 (ReLU), fc3 (linear: \\hat f_AU, the vector of Eq. (9)) and the per-AU read-out (``read_au``).
    No normalisation layers, so the encoder behaves the same in train and eval mode (it is frozen inside
    the standardized space)."""

    def __init__(self, cfg: AUEncoderConfig | None = None):
        super().__init__()
        cfg = cfg or AUEncoderConfig()
        cfg.check()
        self.cfg = cfg
        w = cfg.width
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        self.convs = nn.Sequential(*[m for a, b in zip(chans, chans[1:])
                                     for m in (nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU())])
        side = cfg.image_size // 16
        self.fc1 = nn.Linear(4 * w * side * side, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.hidden)
        self.fc3 = nn.Linear(cfg.hidden, cfg.n_au * cfg.au_dim)
        # fc4, restricted to each AU's own slot: logit_i = <readout_w[i], f_AU_i> + readout_b[i]
        self.readout_w = nn.Parameter(torch.randn(cfg.n_au, cfg.au_dim) / cfg.au_dim ** 0.5)
        self.readout_b = nn.Parameter(torch.zeros(cfg.n_au))

    def features(self, images: Tensor) -> Tensor:
        """\\hat f_AU of Eq. (9): images (B, 3, H, W) in [0, 1] -> (B, n_au, au_dim)."""
        mean = images.mean((1, 2, 3), keepdim=True)
        std = images.std((1, 2, 3), keepdim=True).clamp(min=1e-3)   # a flat image stays finite
        x = self.convs((images - mean) / std).flatten(1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return self.fc3(x).view(-1, self.cfg.n_au, self.cfg.au_dim)

    def conv_features(self, images: Tensor) -> list[Tensor]:
        """The four conv layers' activations (after ReLU) of images (B, 3, H, W) in [0, 1], standardised as in
        ``features``: a face network trained here, which S3D-NeRF's perceptual loss uses in place of an ImageNet
        VGG (``talklib.oneshot.train.PerceptualLoss``)."""
        mean = images.mean((1, 2, 3), keepdim=True)
        x = (images - mean) / images.std((1, 2, 3), keepdim=True).clamp(min=1e-3)
        out = []
        for layer in self.convs:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x)
        return out

    def read_au(self, features: Tensor) -> Tensor:
        """The fourth FC layer: AU features (B, n_au, au_dim), raw or quantised (Eq. (9)) -> logits (B, n_au)."""
        return (features * self.readout_w).sum(-1) + self.readout_b

    def forward(self, images: Tensor) -> Tensor:
        """AU logits (B, n_au); \\hat x_i of Eq. (7)-(8) is their sigmoid."""
        return self.read_au(self.features(images))


def au_rates(labels) -> np.ndarray:
    """r_i of Eq. (7)'s weights: how often each AU occurs, labels (N, n_au) in {0, 1} -> (n_au,) float64."""
    lab = np.asarray(labels, np.float64)
    if lab.ndim != 2 or len(lab) == 0:
        raise UserError(f"AU labels of shape {lab.shape}: give (N, n_au) with N >= 1")
    return lab.mean(0)


def au_weights(rates) -> Tensor:
    """w_i = (1/r_i) n_AU / sum_j (1/r_j), the per-AU weights of Eq. (7) and (8) (after JAA-Net, ref. [6]).

    rates: (n_au,) occurrence probabilities r_i. The weights sum to n_AU; rare AUs weigh more. An AU that
    never occurs (r_i = 0, 1/r_i infinite) is given the rate of the rarest AU that does, so it weighs as
    much as that one instead of taking all the weight; when no AU occurs at all every weight is 1."""
    r = torch.as_tensor(np.asarray(rates, np.float64))
    if r.ndim != 1 or len(r) == 0 or bool(((r < 0) | (r > 1)).any()):
        raise UserError(f"AU rates {r.tolist()}: give one probability in [0, 1] per AU")
    seen = r > 0
    if not bool(seen.any()):
        return torch.ones(len(r), dtype=torch.float32)
    r = torch.where(seen, r, r[seen].min())
    inv = 1.0 / r
    return (inv * len(r) / inv.sum()).float()


def bce_loss(logits: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
    """Eq. (7): L_bce = -1/n_AU sum_i w_i [x_i log \\hat x_i + (1 - x_i) log(1 - \\hat x_i)], averaged over the batch.

    logits: (B, n_au) (\\hat x = sigmoid(logits), computed stably from the logits), labels: (B, n_au) x_i
    in {0, 1}, weights: (n_au,) w_i (``au_weights``; None = all 1)."""
    per = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    if weights is not None:
        per = per * weights.to(per)
    return per.mean()


def dice_loss(logits: Tensor, labels: Tensor, weights: Tensor | None = None, eps: float = 1.0) -> Tensor:
    """Eq. (8): L_dice = 1/n_AU sum_i w_i [1 - (2 x_i \\hat x_i + eps) / (x_i^2 + \\hat x_i^2 + eps)].

    The weighted multi-label Dice loss of refs. [6], [24]. Eq. (8) writes one frame; here, as in the usual
    soft Dice, the products and squares are summed over the batch before the ratio (for a batch of one
    frame it is Eq. (8) term for term), so a rare AU's few positives are not drowned per frame.
    logits, labels: (B, n_au); weights: (n_au,) or None; eps smooths the ratio (1 when both are zero)."""
    p = torch.sigmoid(logits)
    x = labels.to(p.dtype)
    dice = (2 * (x * p).sum(0) + eps) / ((x * x).sum(0) + (p * p).sum(0) + eps)
    per = 1.0 - dice
    if weights is not None:
        per = per * weights.to(per)
    return per.mean()


def au_loss(logits: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
    """L_AU = L_bce + L_dice (Eq. (7) + Eq. (8)), the AU encoder's pre-training loss."""
    return bce_loss(logits, labels, weights) + dice_loss(logits, labels, weights)


def to_tensor(frames: np.ndarray) -> Tensor:
    """Frames (N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1], the input of Eq. (7)-(11)'s networks."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(frames), (0, 3, 1, 2)), np.float32) / 255.0)


def check_frames(frames: np.ndarray, size: int, what: str) -> None:
    """One-line ``UserError`` unless frames are (N, size, size, 3) uint8 with N >= 1 (the frames F_t of Eq. (7)-(11))."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8 or len(f) == 0:
        raise UserError(f"frames of shape {f.shape} and dtype {f.dtype}: give (N, H, W, 3) uint8 RGB frames to the {what}")
    if f.shape[1:3] != (size, size):
        raise UserError(f"frames are {f.shape[1]}x{f.shape[2]}, the {what} was built for {size}x{size}: resize them "
                        f"to {size}x{size}, or build and train one with image_size={f.shape[1]} (square frames)")


def augment_faces(images: Tensor, gen: torch.Generator, max_shift: float = 2.0) -> Tensor:
    """The same faces re-lit and re-framed at random, for the AU encoder's pre-training (module docstring).

    images: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1]. Per image: a gamma (log-normal, sigma 0.3),
    a gain (sigma 0.35), a colour balance per channel (sigma 0.1) and an offset (sigma 0.08), then a shift
    of up to ``max_shift`` pixels each way and a scale (sigma 5 %) about the centre (bilinear, border
    pixels repeated). The AU labels do not change: lips part whatever the light. Draws come from ``gen``
    (a CPU ``torch.Generator``), so a resumed training takes the same ones."""
    b, _, h, w = images.shape
    gamma = torch.exp(0.3 * torch.randn(b, 1, 1, 1, generator=gen))
    gain = torch.exp(0.35 * torch.randn(b, 1, 1, 1, generator=gen))
    colour = torch.exp(0.1 * torch.randn(b, 3, 1, 1, generator=gen))
    offset = 0.08 * torch.randn(b, 1, 1, 1, generator=gen)
    scale = torch.exp(0.05 * torch.randn(b, generator=gen))
    shift = (2 * torch.rand(b, 2, generator=gen) - 1) * max_shift * torch.tensor([2.0 / w, 2.0 / h])
    dev = images.device
    x = (images.clamp(1e-4, 1.0) ** gamma.to(dev) * (gain * colour).to(dev) + offset.to(dev)).clamp(0.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(dev), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _batch(x_all: Tensor, y_all: Tensor, batch: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    i = torch.from_numpy(rng.integers(0, len(x_all), batch))
    return x_all[i], y_all[i]


def train_au_encoder(encoder: AUEncoder, frames: np.ndarray, au_labels: np.ndarray, steps: int, batch: int = 32,
                     lr: float = 1e-3, weights=None, seed: int = 0, ckpt: str | Path | None = None,
                     ckpt_every: int = 100, progress: bool = True, augment: bool = False) -> list[dict]:
    """Pre-train the AU encoder with L_AU = L_bce + L_dice (Eq. (7)-(8)).

    frames: (N, H, W, 3) uint8 faces at the encoder's size; au_labels: (N, n_au) in {0, 1}; weights: the
    w_i (default ``au_weights(au_rates(au_labels))``; ``torch.ones(n_au)`` for an unweighted loss). Adam
    with a cosine decay of lr to 1/20. ``augment``: each batch re-lit and re-framed by ``augment_faces``
    (module docstring: lighting). With ``ckpt``
    it resumes from that file after a kill and saves to it every ``ckpt_every`` steps and at the end.
    Returns the history [{"step", "loss", "bce", "dice", "acc"}] (acc: the batch's AU accuracy at 0.5)."""
    cfg = encoder.cfg
    check_frames(frames, cfg.image_size, "AU encoder")
    lab = np.asarray(au_labels)
    if lab.shape != (len(frames), cfg.n_au) or not np.isin(lab, (0, 1)).all():
        raise UserError(f"AU labels of shape {lab.shape}: give one row of {cfg.n_au} labels in {{0, 1}} per frame "
                        f"({len(frames)} frames)")
    w = au_weights(au_rates(lab)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    if w.shape != (cfg.n_au,):
        raise UserError(f"{tuple(w.shape)} AU weights: give one weight per AU ({cfg.n_au})")
    dev = next(encoder.parameters()).device
    x_all, y_all = to_tensor(frames), torch.from_numpy(lab.astype(np.float32))
    w = w.to(dev)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    settings = {"encoder": asdict(cfg), "steps": steps, "batch": batch, "lr": lr, "seed": seed, "n": len(frames),
                "weights": [float(v) for v in w.cpu()], "augment": bool(augment)}
    start, history = (checkpoint.resume_training(ckpt, "AU-encoder training state", settings, encoder, opt,
                                                 {"rng": rng, "gen": gen}) if ckpt is not None else (0, []))
    encoder.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="AU encoder", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        x, y = _batch(x_all, y_all, batch, rng)
        x, y = x.to(dev), y.to(dev)
        if augment:
            x = augment_faces(x, gen)
        logits = encoder(x)
        bce, dice = bce_loss(logits, y, w), dice_loss(logits, y, w)
        loss = bce + dice
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = ((logits.detach() > 0).float() == y).float().mean()
        history.append({"step": step + 1, "loss": float(loss.detach()), "bce": float(bce.detach()),
                        "dice": float(dice.detach()), "acc": float(acc)})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, encoder, opt, step + 1, history, {"rng": rng, "gen": gen})
    encoder.eval()
    return history


@torch.no_grad()
def predict_au(encoder: AUEncoder, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """AU probabilities \\hat x of Eq. (7)-(8), (N, n_au) float32, of frames (N, H, W, 3) uint8."""
    check_frames(frames, encoder.cfg.image_size, "AU encoder")
    encoder.eval()
    dev = next(encoder.parameters()).device
    out = [torch.sigmoid(encoder(to_tensor(frames[s:s + batch]).to(dev))).cpu() for s in range(0, len(frames), batch)]
    return torch.cat(out).numpy()


def au_scores(pred, labels) -> dict[str, np.ndarray]:
    """Per-AU agreement of predicted AUs with the true labels, both (N, n_au) (probabilities or labels; > 0.5 is on).

    Returns (n_au,) float64 arrays: "acc" (frames where the two agree), "f1" (2 TP / (2 TP + FP + FN); NaN for
    an AU that is off in every frame of both, where F1 says nothing), "pred_rate" and "true_rate" (how often
    each is on). Used to score the AU encoder of Eq. (7)-(8) on held-out clips (notebook 07)."""
    p, y = np.asarray(pred) > 0.5, np.asarray(labels) > 0.5
    if p.shape != y.shape or p.ndim != 2 or len(p) == 0:
        raise UserError(f"AU predictions {p.shape} and labels {y.shape}: give two (N, n_au) arrays with N >= 1")
    tp, fp, fn = (p & y).sum(0), (p & ~y).sum(0), (~p & y).sum(0)
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    return {"acc": (p == y).mean(0).astype(np.float64), "f1": f1.astype(np.float64),
            "pred_rate": p.mean(0).astype(np.float64), "true_rate": y.mean(0).astype(np.float64)}


def save_au_encoder(encoder: AUEncoder, path: str | Path) -> Path:
    """The pre-trained AU encoder of Eq. (7)-(9): kind, config and weights, atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"kind": KIND, "config": asdict(encoder.cfg), "state": encoder.state_dict()})


def load_au_encoder(path: str | Path) -> AUEncoder:
    """An AU encoder (Eq. (7)-(9)) written by ``save_au_encoder``, in eval mode (one-line errors for a missing, foreign or
    other-kind file)."""
    fix = "give a file written by talklib.codebook.au.save_au_encoder"
    blob = checkpoint.load(path, "AU encoder", required_keys=("config", "state"), fix=fix)
    if blob.get("kind") != KIND:
        raise UserError(f"{path} holds a checkpoint of kind {blob.get('kind')!r}, not an AU encoder: {fix}")
    try:
        enc = AUEncoder(AUEncoderConfig(**blob["config"]))
        enc.load_state_dict(blob["state"])
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's AU encoder: {fix}") from None
    return enc.eval()
