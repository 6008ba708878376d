"""A small phoneme recognizer whose posteriors stand in for DeepSpeech's logits.

AD-NeRF (and the disentangled-audio NeRF's baseline) feed a NeRF DeepSpeech's per-character logits at
50 Hz, windowed to ``[N, 16, 29]``. DeepSpeech's TensorFlow-1 graph cannot be downloaded here, so
talklib trains its own content recognizer on the corpus's phoneme timelines: the SpeechSplit mel on
the 50 Hz stream (see :mod:`talklib.audio.features`) -> 2 conv layers -> a BiGRU -> per-step logits
over ``talklib.data.dataset.PHONES`` (40 phones incl. SIL), trained with frame-level cross-entropy.
Its softmax posteriors, windowed 16 steps per video frame, are ``aud_phon_win.npy`` ``[N, 16, 40]``
— the same role and shape family as AD-NeRF's ``aud.npy``.

Shapes: stream (B, S, 80) with S = 2 N steps at 50 Hz; logits (B, S, C).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from talklib.audio import features as F
from talklib.data.dataset import PHONES, phoneme_frame_ids


class PhonemeRecognizer(nn.Module):
    """Conv front-end + BiGRU + linear classifier over phones (DeepSpeech-like, much smaller)."""

    def __init__(self, n_in: int = F.N_MELS, hidden: int = 128, n_classes: int = len(PHONES)):
        super().__init__()
        self.front = nn.Sequential(
            nn.Conv1d(n_in, hidden, 5, padding=2), nn.GroupNorm(8, hidden), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.GroupNorm(8, hidden), nn.ReLU(),
        )
        self.rnn = nn.GRU(hidden, hidden // 2, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, stream: Tensor) -> Tensor:
        """stream (B, S, 80) -> logits (B, S, C)."""
        h = self.front(stream.transpose(1, 2)).transpose(1, 2)
        h, _ = self.rnn(h)
        return self.out(h)


def stream_labels(phonemes, n_frames: int, fps: int = F.FPS) -> np.ndarray:
    """Phone id (index into PHONES) at each 50 Hz step centre: (2N,) int64."""
    return phoneme_frame_ids(phonemes, n_frames * (F.STREAM_HZ // fps), F.STREAM_HZ)


def train_recognizer(model: PhonemeRecognizer, items: list[dict], steps: int, batch: int = 8, length: int = 100,
                     lr: float = 2e-3, seed: int = 0, device: torch.device | str = "cpu",
                     progress: bool = True) -> list[float]:
    """Cross-entropy on random crops of ``length`` steps; items: dicts with ``stream`` (S, 80), ``labels`` (S,).
    Returns the loss curve."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="recognizer", disable=not progress):
        xs, ys = [], []
        for _ in range(batch):
            it = items[int(rng.integers(len(items)))]
            s_len = len(it["labels"])
            s = int(rng.integers(0, max(1, s_len - length + 1)))
            x, y = it["stream"][s:s + length], it["labels"][s:s + length]
            pad = length - len(y)
            xs.append(np.pad(x, ((0, pad), (0, 0))))
            ys.append(np.pad(y, (0, pad), constant_values=-100))
        x = torch.from_numpy(np.stack(xs)).to(device)
        y = torch.from_numpy(np.stack(ys)).to(device)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, model.out.out_features), y.reshape(-1),
                                           ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def posteriors(model: PhonemeRecognizer, stream: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Softmax phone posteriors on the 50 Hz stream: (S, 80) -> (S, C)."""
    model.eval()
    logits = model(torch.from_numpy(np.asarray(stream, np.float32))[None].to(device))[0]
    return torch.softmax(logits, dim=-1).cpu().numpy()


def posterior_windows(model: PhonemeRecognizer, stream: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """DeepSpeech-like windows [N, 16, C] of the posteriors (AD-NeRF's aud.npy layout)."""
    return F.windows(posteriors(model, stream, device))


def frame_accuracy(model: PhonemeRecognizer, items: list[dict], device: torch.device | str = "cpu") -> float:
    """Fraction of 50 Hz steps whose arg-max phone equals the timeline's, over items (held-out clips)."""
    hit = tot = 0
    for it in items:
        pred = posteriors(model, it["stream"], device).argmax(-1)
        hit += int((pred == it["labels"]).sum())
        tot += len(it["labels"])
    return hit / max(tot, 1)
