"""Audio -> condition: a small network from AD-NeRF-style audio windows to expression coefficients.

Why this route (and not audio features straight into the field, as AD-NeRF does): the synthetic
speaker gives us the ground-truth expression of every frame, so the NeRF learns appearance from a
clean, low-dimensional condition (NeRF-3DTalker Eq. (4): f_exp-aud, plus the constant f_id, f_alb,
f_illu), and the audio-to-motion mapping is learned separately on *all* speech clips of the corpus
(many voices and texts, no rendering needed) instead of only the few minutes of one rendered video.
Feeding audio windows to the field directly (AD-NeRF, Disentangled-audio NeRF Eq. (7)) is not
possible yet: ``talklib.nerf.scene.from_clip`` packs only 3DMM parts into the condition.

Input: mel windows (N, 16, 80) (``talklib.audio.features``: 16 steps of the 50 Hz stream centred
on each video frame). Output: (N, out_dim) coefficients, smoothed over time at inference.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm


class Audio2Exp(nn.Module):
    """Conv over the 16-step window, then an MLP: (N, 16, n_mels) -> (N, out_dim)."""

    def __init__(self, n_mels: int = 80, out_dim: int = 79, hidden: int = 128):
        super().__init__()
        self.cfg = {"n_mels": n_mels, "out_dim": out_dim, "hidden": hidden}
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 3, padding=1), nn.SiLU(),
            nn.Conv1d(hidden, hidden, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv1d(hidden, hidden, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.head = nn.Sequential(nn.Linear(hidden * 4, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))
        self.register_buffer("out_mean", torch.zeros(out_dim))
        self.register_buffer("out_std", torch.ones(out_dim))

    def forward(self, win: Tensor) -> Tensor:
        h = self.conv(win.transpose(1, 2))                       # (N, hidden, 4)
        return self.head(h.flatten(1)) * self.out_std + self.out_mean


def mel_windows(audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """(N, 16, 80) mel windows of 16 kHz mono audio, one per 40 ms video frame."""
    from talklib.audio.features import mel_stream, n_video_frames, windows

    if n_frames is None:
        n_frames = n_video_frames(len(audio))
    return windows(mel_stream(audio, n_frames))


def smooth(x: Tensor, k: int = 3) -> Tensor:
    """Moving average over frames (N, D) with edge padding (removes frame-to-frame jitter)."""
    if k <= 1 or x.shape[0] < 2:
        return x
    xp = F.pad(x.t()[None], (k // 2, k - 1 - k // 2), mode="replicate")
    return F.avg_pool1d(xp, k, stride=1)[0].t()


def fit_audio2exp(model: Audio2Exp, windows: list[np.ndarray], targets: list[np.ndarray], steps: int,
                  batch: int = 256, lr: float = 2e-3, seed: int = 0, progress: bool = True) -> list[float]:
    """Regress targets (N_k, out_dim) from windows (N_k, 16, n_mels) of several clips; MSE in
    normalised units. Returns the loss history."""
    x = torch.from_numpy(np.concatenate(windows)).float()
    y = torch.from_numpy(np.concatenate(targets)).float()
    dev = next(model.parameters()).device
    x, y = x.to(dev), y.to(dev)
    with torch.no_grad():
        model.out_mean.copy_(y.mean(0))
        model.out_std.copy_(y.std(0, unbiased=False).clamp(min=1e-4))
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = []
    for step in tqdm(range(steps), desc="fit audio->exp", disable=not progress):
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=g).to(dev)
        xb = x[idx] + 0.01 * torch.randn(x[idx].shape, generator=g).to(dev)
        loss = torch.mean(((model(xb) - y[idx]) / model.out_std) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append(float(loss.detach()))
    return hist


@torch.no_grad()
def predict(model: Audio2Exp, windows: np.ndarray, smooth_k: int = 3) -> Tensor:
    """Expression (N, out_dim) for mel windows (N, 16, n_mels), temporally smoothed."""
    dev = next(model.parameters()).device
    return smooth(model(torch.from_numpy(windows).float().to(dev)), smooth_k)
