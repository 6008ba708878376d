"""Contrastive audio–lip synchronisation, DFA-NeRF Sec. 3.3, Eq. (3).

A CNN audio encoder ``E_a`` maps the audio around video frame t (the 16-step mel window of
:func:`talklib.audio.features.windows`, 0.32 s) to ``f_a``; a mouth encoder maps the mouth motion
around t to ``f_m``. DFA-NeRF's ``f_m`` comes from its landmark autoencoder; here it comes from the
synthetic speaker's **ground-truth mouth expression** (the mouth components of ``exp``, a window of
``mouth_win`` frames) — the same role, with no tracking error. Both embeddings end in a ReLU, so their
cosine lies in [0, 1] and is used as the probability "in sync" (as Wav2Lip's SyncNet does):

    L_con = -1/N sum_i [ y_i log d(f_m, f_a) + (1 - y_i) log(1 - d(f_m, f_a^-)) ]        (3)

with ``d`` the cosine. Positives: time-aligned pairs. Negatives: the same clip's audio shifted by
1..max_shift frames, or audio from another clip (DFA-NeRF: "from different videos or the same video
with a time-shift").

Measured by :func:`offset_accuracy`: for each frame of a held-out clip, the offset in
``-max_shift..max_shift`` whose audio scores highest against the mouth; right when it is 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from talklib.data.dataset import EXP_NAMES

#: Expression components that move the mouth (columns of ``exp``).
MOUTH_COMPONENTS = tuple(i for i, n in enumerate(EXP_NAMES) if not n.startswith(("blink", "brow")))


class AudioEncoder(nn.Module):
    """E_a: mel window (B, 16, 80) -> f_a (B, dim), non-negative."""

    def __init__(self, n_mels: int = 80, width: int = 64, dim: int = 32, win: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(n_mels, width, 3, padding=1), nn.ReLU(),
            nn.Conv1d(width, width, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv1d(width, width, 3, padding=1, stride=2), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * ((win + 3) // 4), dim), nn.ReLU())

    def forward(self, mel_win: Tensor) -> Tensor:
        return self.head(self.net(mel_win.transpose(1, 2)))

    def to_blob(self) -> dict:
        """{"config", "state"} of this encoder, as the files that carry one store it (notebook 02's
        ``aud_extractors.pt``, notebook 08's motion generator); ``from_blob`` reads it back."""
        conv, lin = self.net[0], self.head[1]
        return {"config": {"n_mels": conv.in_channels, "width": conv.out_channels, "dim": lin.out_features},
                "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def from_blob(cls, blob: dict) -> AudioEncoder:
        """The encoder ``to_blob`` describes, in eval mode."""
        enc = cls(**blob["config"])
        enc.load_state_dict(blob["state"])
        return enc.eval()


class MouthEncoder(nn.Module):
    """Mouth motion (B, K, P) (K frames of P mouth components, standardised) -> f_m (B, dim), non-negative."""

    def __init__(self, n_in: int, win: int = 5, width: int = 64, dim: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in * win, width), nn.ReLU(),
                                 nn.Linear(width, dim), nn.ReLU())

    def forward(self, mouth_win: Tensor) -> Tensor:
        return self.net(mouth_win)


def sync_prob(f_a: Tensor, f_m: Tensor) -> Tensor:
    """d(f_m, f_a): cosine of non-negative embeddings, in [0, 1] (clamped away from 0 and 1). (B,)"""
    return nn.functional.cosine_similarity(f_a, f_m, dim=-1, eps=1e-6).clamp(1e-6, 1 - 1e-6)


def contrastive_loss(d_pos: Tensor, d_neg: Tensor) -> Tensor:
    """Eq. (3): BCE with y = 1 for aligned pairs (d_pos) and y = 0 for non-aligned ones (d_neg)."""
    y = torch.cat([torch.ones_like(d_pos), torch.zeros_like(d_neg)])
    return nn.functional.binary_cross_entropy(torch.cat([d_pos, d_neg]), y)


def frame_windows(x: np.ndarray, win: int) -> np.ndarray:
    """Per-frame windows of ``win`` frames centred on each frame (edges repeated): (N, P) -> (N, win, P)."""
    n = len(x)
    idx = np.clip(np.arange(n)[:, None] + np.arange(win)[None, :] - win // 2, 0, n - 1)
    return x[idx]


def mouth_features(exp: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None):
    """Mouth components of ``exp`` (N, 79) -> standardised (N, P), with the (mean, std) used."""
    m = np.asarray(exp, np.float32)[:, list(MOUTH_COMPONENTS)]
    if mean is None:
        mean, std = m.mean(0), m.std(0) + 1e-6
    return (m - mean) / std, (mean, std)


def _batch(items, batch, max_shift, rng):
    """Positives and negatives: (mel_pos, mouth, mel_neg), each batch x ...; half the negatives are
    time shifts of 1..max_shift frames, half come from another clip."""
    mp, mm, mn = [], [], []
    for k in range(batch):
        i = int(rng.integers(len(items)))
        it = items[i]
        n = len(it["mouth"])
        t = int(rng.integers(n))
        mp.append(it["mel_win"][t])
        mm.append(it["mouth_win"][t])
        if k % 2 == 0 or len(items) == 1:
            shifts = [s for s in range(-max_shift, max_shift + 1) if s != 0 and 0 <= t + s < n]
            mn.append(it["mel_win"][t + shifts[int(rng.integers(len(shifts)))]])
        else:
            j = int(rng.integers(len(items) - 1))
            other = items[j + (j >= i)]
            mn.append(other["mel_win"][int(rng.integers(len(other["mouth"])))])
    return (torch.from_numpy(np.stack(mp)), torch.from_numpy(np.stack(mm).astype(np.float32)),
            torch.from_numpy(np.stack(mn)))


def prepare(mel_win: np.ndarray, mouth: np.ndarray, mouth_win: int = 5) -> dict:
    """One clip for training/evaluation: mel windows (N, 16, 80) and standardised mouth (N, P)."""
    return {"mel_win": np.asarray(mel_win, np.float32), "mouth": mouth,
            "mouth_win": frame_windows(np.asarray(mouth, np.float32), mouth_win)}


def train_sync(audio_enc: AudioEncoder, mouth_enc: MouthEncoder, items: list[dict], steps: int, batch: int = 64,
               max_shift: int = 10, lr: float = 3e-3, seed: int = 0, device: torch.device | str = "cpu",
               progress: bool = True) -> list[float]:
    """Train E_a and the mouth encoder with Eq. (3); returns the loss curve. items from :func:`prepare`.

    Adam with a one-cycle schedule: the learning rate warms up to ``lr`` over the first 10 % of the
    steps and anneals to ~0 by the last, so the encoders settle instead of ending mid-jump (a constant
    rate left the per-frame offset accuracy strongly dependent on the seed)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    audio_enc.to(device).train()
    mouth_enc.to(device).train()
    opt = torch.optim.Adam(list(audio_enc.parameters()) + list(mouth_enc.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    losses = []
    for _ in tqdm(range(steps), desc="sync", disable=not progress):
        mel_pos, mouth, mel_neg = (x.to(device) for x in _batch(items, batch, max_shift, rng))
        f_m = mouth_enc(mouth)
        loss = contrastive_loss(sync_prob(audio_enc(mel_pos), f_m), sync_prob(audio_enc(mel_neg), f_m))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    audio_enc.eval()
    mouth_enc.eval()
    return losses


@torch.no_grad()
def offset_scores(audio_enc: AudioEncoder, mouth_enc: MouthEncoder, item: dict, max_shift: int = 10,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """d(f_m(t), f_a(t + s)) for every frame t with all shifts inside the clip: (N - 2 max_shift, 2 max_shift + 1),
    column j is shift s = j - max_shift."""
    f_a = audio_enc(torch.from_numpy(item["mel_win"]).to(device))
    f_m = mouth_enc(torch.from_numpy(item["mouth_win"].astype(np.float32)).to(device))
    n = len(f_m)
    ts = torch.arange(max_shift, n - max_shift)
    cols = [sync_prob(f_a[ts + s], f_m[ts]) for s in range(-max_shift, max_shift + 1)]
    return torch.stack(cols, dim=1).cpu().numpy()


def offset_accuracy(audio_enc: AudioEncoder, mouth_enc: MouthEncoder, items: list[dict], max_shift: int = 10,
                    device: torch.device | str = "cpu") -> dict:
    """Offset picking on held-out clips.

    Returns ``frame_acc`` (per frame: arg-max over the 2 max_shift + 1 offsets is 0), ``clip_acc`` (per
    clip: arg-max of the clip's mean score curve is 0), ``chance`` (1 / (2 max_shift + 1)), ``curve``
    (mean score per offset over all frames) and ``offsets``."""
    all_scores = [offset_scores(audio_enc, mouth_enc, it, max_shift, device) for it in items]
    all_scores = [s for s in all_scores if len(s)]
    frames = np.concatenate(all_scores)
    return {
        "frame_acc": float(np.mean(frames.argmax(1) == max_shift)),
        "clip_acc": float(np.mean([s.mean(0).argmax() == max_shift for s in all_scores])),
        "chance": 1.0 / (2 * max_shift + 1),
        "curve": frames.mean(0),
        "offsets": np.arange(-max_shift, max_shift + 1),
    }
