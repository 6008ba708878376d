"""Training the lip-sync expert on (mouth crops, mel stream) pairs, and embedding whole clips.

A training example is one clip: ``SyncClip(crops, mel)`` with crops (N, h + 2 mh, w + 2 mw, 3) uint8 —
taken ``margin`` larger than the model's input so that training can jitter the crop (same offset for
the T frames of a window) and evaluation takes the centre — and the 50 Hz mel stream (2N, 80).

Each step samples B windows i, an off-sync index j = i + s (|s| >= 1; half the time |s| <= 3, the
hard cases next to the true alignment, otherwise anywhere in the clip) and scores

- the cosine loss, NeRF-3DTalker Eq. (2) on (v_i, a_i) with Wav2Lip's off-sync term on (v_i, a_j)
  and (v_j, a_i), and/or
- the triplet loss, S3D-NeRF Eq. (7) with margin 0.5, anchors v_i (a_i vs a_j) and a_i (v_i vs v_j).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talklib.sync.crops import MOUTH_SCALE, audio_windows, crop_boxes, mouth_boxes
from talklib.sync.losses import cosine_sync_loss, triplet_sync_loss
from talklib.sync.model import SyncConfig, SyncNet, l2norm
from talklib.sync.offset import VSHIFT, SyncScore, sync_score

MARGIN = 0.125  # extra crop size on each side, as a fraction of the crop (jitter room)


@dataclass
class SyncClip:
    crops: np.ndarray  # (N, h + 2 mh, w + 2 mw, 3) uint8 mouth crops with jitter margin
    mel: np.ndarray    # (2N, 80) float32 50 Hz mel stream

    @property
    def n_frames(self) -> int:
        return len(self.crops)


def crop_margins(cfg: SyncConfig) -> tuple[int, int]:
    """The jitter margin (rows, columns) on each side of a ``SyncClip``'s crops; the model's input is the centre."""
    return int(round(cfg.crop_h * MARGIN)), int(round(cfg.crop_w * MARGIN))


def margin_crops(frames, landmarks, cfg: SyncConfig, scale: float = MOUTH_SCALE) -> np.ndarray:
    """Mouth crops (N, h + 2 mh, w + 2 mw, 3) uint8 with the jitter margin of ``crop_margins``."""
    mh, mw = crop_margins(cfg)
    H, W = cfg.crop_h + 2 * mh, cfg.crop_w + 2 * mw
    boxes = mouth_boxes(landmarks, cfg.crop_h / cfg.crop_w, scale)
    boxes[:, 2] *= W / cfg.crop_w
    boxes[:, 3] *= H / cfg.crop_h
    return crop_boxes(frames, boxes, H, W)


def centre_of(crops: np.ndarray, cfg: SyncConfig) -> np.ndarray:
    """The model-sized centre (N, h, w, 3) of margin crops (N, h + 2 mh, w + 2 mw, 3)."""
    mh, mw = crop_margins(cfg)
    return crops[:, mh:mh + cfg.crop_h, mw:mw + cfg.crop_w]


def prepare_clip(frames, landmarks, audio, cfg: SyncConfig, scale: float = MOUTH_SCALE) -> SyncClip:
    """Frames (N, H, W, 3) uint8 + landmarks (N, 478, 2) + 16 kHz audio -> a ``SyncClip``."""
    from talklib.sync.crops import clip_mel

    return SyncClip(crops=margin_crops(frames, landmarks, cfg, scale), mel=clip_mel(audio, len(frames)))


def _windows_at(clip: SyncClip, starts: np.ndarray, cfg: SyncConfig, oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
    t = cfg.frames
    idx = starts[:, None] + np.arange(t)[None, :]
    win = clip.crops[idx]  # (B, T, Hm, Wm, 3)
    out = np.empty((len(starts), t, cfg.crop_h, cfg.crop_w, 3), np.uint8)
    for b in range(len(starts)):
        out[b] = win[b, :, oy[b]:oy[b] + cfg.crop_h, ox[b]:ox[b] + cfg.crop_w]
    return np.transpose(out, (0, 1, 4, 2, 3)).astype(np.float32) / 255.0


def _mel_at(clip: SyncClip, starts: np.ndarray, cfg: SyncConfig) -> np.ndarray:
    steps = cfg.audio_steps
    idx = starts[:, None] * cfg.steps_per_frame + np.arange(steps)[None, :]
    return clip.mel[np.clip(idx, 0, len(clip.mel) - 1)]


def relight(windows: tuple[np.ndarray, ...], rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, ...]:
    """Photometric augmentation of video windows (B, T, 3, h, w) in [0, 1]: per window a random
    exposure and colour gain, a gamma and a linear shading ramp across the crop (light from one side),
    the same for the window's T frames and for window b of every array in ``windows`` (an in-sync
    window and its off-sync partner are lit alike). ``strength`` 0 returns them unchanged."""
    if strength <= 0:
        return windows
    b, _, _, h, w = windows[0].shape
    f32 = np.float32
    gain = np.exp(strength * (rng.normal(0, 0.35, (b, 1, 1, 1, 1)) + rng.normal(0, 0.1, (b, 1, 3, 1, 1)))).astype(f32)
    gamma = np.exp(strength * rng.normal(0, 0.3, (b, 1, 1, 1, 1))).astype(f32)
    ang = rng.uniform(0, 2 * np.pi, b)
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    ramp = np.cos(ang)[:, None, None] * xx + np.sin(ang)[:, None, None] * yy  # (B, h, w), |ramp| <= 1.42
    shade = np.clip(1.0 + strength * rng.uniform(0, 0.6, (b, 1, 1)) * ramp, 0.05, None)[:, None, None].astype(f32)
    scale = gain * shade  # (B, 1, 3, h, w)
    out = []
    for x in windows:
        y = np.clip(x, 1e-6, 1.0, dtype=f32)
        np.log(y, out=y)
        y *= gamma
        np.exp(y, out=y)  # x ** gamma
        y *= scale
        out.append(np.clip(y, 0.0, 1.0, out=y))
    return tuple(out)


def sample_batch(clips: list[SyncClip], cfg: SyncConfig, batch: int, rng: np.random.Generator,
                 jitter: bool = True, augment: float = 0.0, near_max: int = 3):
    """One training batch: video windows v_i, v_j (B, T, 3, h, w) and mel windows a_i, a_j (B, 2T, 80).

    Half of the partners are at most ``near_max`` frames away (the hard cases that decide whether the
    offset is found to the frame), the rest anywhere in the clip. ``augment`` > 0 relights each pair
    (v_i, v_j) the same random way (:func:`relight`)."""
    t = cfg.frames
    lengths = np.array([c.n_frames - t + 1 for c in clips])
    which = rng.choice(len(clips), size=batch, p=lengths / lengths.sum())
    mh, mw = crop_margins(cfg)
    vi, vj, ai, aj = [], [], [], []
    for c in np.unique(which):
        clip, k = clips[c], int((which == c).sum())
        n = clip.n_frames - t + 1
        i = rng.integers(0, n, size=k)
        near = rng.random(k) < 0.5
        s = np.where(near, rng.integers(1, near_max + 1, size=k), rng.integers(1, max(n, 2), size=k))
        s = s * rng.choice([-1, 1], size=k)
        j = np.mod(i + s, n)
        j = np.where(j == i, np.mod(i + 1, n), j)
        oy = rng.integers(0, 2 * mh + 1, size=k) if jitter else np.full(k, mh)
        ox = rng.integers(0, 2 * mw + 1, size=k) if jitter else np.full(k, mw)
        vi.append(_windows_at(clip, i, cfg, oy, ox))
        vj.append(_windows_at(clip, j, cfg, oy, ox))
        ai.append(_mel_at(clip, i, cfg))
        aj.append(_mel_at(clip, j, cfg))
    cat = lambda xs: np.concatenate(xs)  # noqa: E731
    vi, vj, ai, aj = cat(vi), cat(vj), cat(ai), cat(aj)
    if augment > 0:
        vi, vj = relight((vi, vj), rng, augment)
    return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in (vi, vj, ai, aj))


def sync_losses(model: SyncNet, vi, vj, ai, aj, loss: str = "both") -> dict[str, torch.Tensor]:
    """Eq. (2) cosine (with off-sync term) and Eq. (7) triplet losses of one batch; ``total`` per ``loss``."""
    e_vi, e_vj = model.mouth(torch.cat([vi, vj])).chunk(2)
    e_ai, e_aj = model.audio(torch.cat([ai, aj])).chunk(2)
    b = len(vi)
    ones, zeros = torch.ones(b), torch.zeros(b)
    cos_loss = cosine_sync_loss(torch.cat([e_vi, e_vi, e_vj]), torch.cat([e_ai, e_aj, e_ai]),
                                torch.cat([ones, zeros, zeros]))
    tri_loss = triplet_sync_loss(e_vi, e_ai, e_aj, e_l_pos=e_vi, e_l_neg=e_vj, e_a=e_ai, margin=0.5)
    total = {"cosine": cos_loss, "triplet": tri_loss, "both": cos_loss + tri_loss}[loss]
    with torch.no_grad():
        pos = SyncNet.similarity(e_vi, e_ai)
        neg = SyncNet.similarity(e_vi, e_aj)
        acc = 0.5 * ((pos > 0.5).float().mean() + (neg <= 0.5).float().mean())
    return {"total": total, "cosine": cos_loss.detach(), "triplet": tri_loss.detach(), "acc": acc,
            "pos_cos": pos.mean(), "neg_cos": neg.mean()}


def train_sync(clips: list[SyncClip], cfg: SyncConfig | None = None, steps: int = 300, batch: int = 48,
               lr: float = 1e-3, loss: str = "both", seed: int = 0, device="cpu", augment: float = 0.0,
               progress: bool = True) -> tuple[SyncNet, dict[str, list[float]]]:
    """Train a ``SyncNet`` on ``clips``; returns the model (eval mode) and per-step history.

    ``augment``: strength of the photometric augmentation (:func:`relight`; 0 = none)."""
    if loss not in ("both", "cosine", "triplet"):
        raise ValueError(f"loss {loss!r}: choose both, cosine or triplet")
    cfg = cfg or SyncConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SyncNet(cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    hist: dict[str, list[float]] = {k: [] for k in ("total", "cosine", "triplet", "acc", "pos_cos", "neg_cos")}
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="sync expert", leave=False)
    for _ in it:
        vi, vj, ai, aj = (x.to(device) for x in sample_batch(clips, cfg, batch, rng, augment=augment))
        out = sync_losses(model, vi, vj, ai, aj, loss)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        sched.step()
        for k in hist:
            hist[k].append(float(out[k].detach()))
    return model.eval(), hist


@torch.no_grad()
def embed_clip(model: SyncNet, clip: SyncClip, batch: int = 256, n_windows: int | None = None):
    """Unit-norm embeddings of every window of a clip: video (n, D), audio (n, D).

    ``n_windows`` defaults to syncnet_python's count, ``n_frames - T`` (its ``range(0, lastframe)``).
    """
    cfg = model.cfg
    dev = next(model.parameters()).device
    n = n_windows if n_windows is not None else clip.n_frames - cfg.frames
    n = max(1, min(n, clip.n_frames - cfg.frames + 1))
    mh, mw = crop_margins(cfg)
    starts = np.arange(n)
    ev, ea = [], []
    for s in range(0, n, batch):
        st = starts[s:s + batch]
        v = torch.from_numpy(_windows_at(clip, st, cfg, np.full(len(st), mh), np.full(len(st), mw))).to(dev)
        a = torch.from_numpy(audio_windows(clip.mel, clip.n_frames, cfg.frames, cfg.steps_per_frame)[st]).to(dev)
        ev.append(l2norm(model.mouth(v)).cpu())
        ea.append(l2norm(model.audio(a)).cpu())
    return torch.cat(ev).numpy(), torch.cat(ea).numpy()


def score_clip(model: SyncNet, clip: SyncClip, vshift: int = VSHIFT) -> SyncScore:
    """AV offset / LSE-D / LSE-C of a clip with the trained expert.

    The embeddings are unit-norm with one constant coordinate 1 appended: distances between real
    windows are unchanged (Euclidean distance of unit vectors, at most sqrt(2) for ReLU embeddings),
    while syncnet_python's zero padding at the clip's ends is sqrt(2) away from every window — never
    better than a real pair, as with the official model's large-norm embeddings.
    """
    v, a = embed_clip(model, clip)
    one = np.ones((len(v), 1), v.dtype)
    return sync_score(np.concatenate([v, one], 1), np.concatenate([a, one], 1), vshift)


def shift_audio(audio: np.ndarray, frames: int, fps: float = 25.0, sr: int = 16000) -> np.ndarray:
    """Delay (``frames`` > 0) or advance (< 0) audio by whole video frames, keeping its length."""
    a = np.asarray(audio, np.float32)
    k = int(round(frames * sr / fps))
    if k == 0:
        return a.copy()
    if k > 0:
        return np.concatenate([np.zeros(k, np.float32), a[:-k]])
    return np.concatenate([a[-k:], np.zeros(-k, np.float32)])
