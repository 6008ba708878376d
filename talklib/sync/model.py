"""The lip-sync expert: a mouth encoder and an audio encoder mapping to one embedding space.

SyncNet (Chung & Zisserman 2016) / Wav2Lip's expert, shrunk for the synthetic speaker:

- ``MouthEncoder``: ``T`` consecutive mouth crops (B, T, 3, H, W) in [0, 1], stacked on the channel axis
  (Wav2Lip), -> a 2D CNN -> ``e_l`` (B, D);
- ``AudioEncoder``: the matching mel window (B, 2T, 80) — 2 steps of the 50 Hz mel stream of
  ``talklib.audio.features.mel_stream`` per video frame, i.e. 0.2 s for T = 5 — -> a 2D CNN -> ``e_a`` (B, D).

Both end in a ReLU (non-negative embeddings, as Wav2Lip) so the cosine similarity lies in [0, 1] and
NeRF-3DTalker's Eq. (2), ``-log cos``, is defined. ``SyncNet.similarity`` is S3D-NeRF's Eq. (6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talklib.errors import UserError


@dataclass(frozen=True)
class SyncConfig:
    frames: int = 5          # T: mouth crops per window (0.2 s at 25 fps)
    crop_h: int = 24         # mouth crop height (px)
    crop_w: int = 40         # mouth crop width (px)
    n_mels: int = 80         # mel bins of the audio window
    steps_per_frame: int = 2  # mel stream steps per video frame (50 Hz stream / 25 fps)
    width: int = 16          # channels of the first conv layer (doubling per stage)
    dim: int = 128           # embedding size D
    input_norm: bool = True  # standardise each window's crops per colour channel (brightness/contrast invariance)

    @property
    def audio_steps(self) -> int:
        return self.frames * self.steps_per_frame


def _block(cin: int, cout: int, stride) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class MouthEncoder(nn.Module):
    """(B, T, 3, H, W) mouth crops in [0, 1] -> (B, D) non-negative embedding ``e_l``.

    With ``cfg.input_norm`` each window is standardised per colour channel over its T frames and
    pixels first, so a global change of brightness or contrast (the test clips' lighting differs from
    the training clip's) does not change the embedding; the mouth's shape and motion remain.
    """

    def __init__(self, cfg: SyncConfig):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(
            _block(3 * cfg.frames, w, 2), _block(w, 2 * w, 1),
            _block(2 * w, 2 * w, 2), _block(2 * w, 4 * w, 1),
            _block(4 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(4 * w, cfg.dim), nn.ReLU())
        self.input_norm = cfg.input_norm

    def forward(self, crops: Tensor) -> Tensor:
        b, t, c, h, w = crops.shape
        if self.input_norm:
            mean = crops.mean(dim=(1, 3, 4), keepdim=True)
            std = crops.std(dim=(1, 3, 4), keepdim=True)
            x = ((crops - mean) / (std + 0.02)).reshape(b, t * c, h, w)
        else:
            x = crops.reshape(b, t * c, h, w) * 2.0 - 1.0
        return self.head(self.net(x))


class AudioEncoder(nn.Module):
    """(B, S, M) mel window (S steps, M mels, values in [0, 1]) -> (B, D) non-negative embedding ``e_a``.

    Pairs of mel bins are averaged (M/2 channels) and a 1D CNN runs over the S time steps.
    """

    def __init__(self, cfg: SyncConfig):
        super().__init__()
        w = cfg.width
        c = cfg.n_mels // 2

        def block1d(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm1d(cout), nn.ReLU())

        self.net = nn.Sequential(
            block1d(c, 4 * w, 1), block1d(4 * w, 4 * w, 1),
            block1d(4 * w, 8 * w, 2), block1d(8 * w, 8 * w, 2),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(8 * w, cfg.dim), nn.ReLU())

    def forward(self, mel: Tensor) -> Tensor:
        b, steps, m = mel.shape
        x = mel[:, :, : m // 2 * 2].reshape(b, steps, m // 2, 2).mean(-1)  # (B, S, M/2)
        return self.head(self.net(x.transpose(1, 2) * 2.0 - 1.0))


class SyncNet(nn.Module):
    """The two encoders; ``forward(crops, mel)`` returns ``(e_l, e_a)``."""

    def __init__(self, cfg: SyncConfig | None = None):
        super().__init__()
        self.cfg = cfg or SyncConfig()
        self.mouth = MouthEncoder(self.cfg)
        self.audio = AudioEncoder(self.cfg)

    def forward(self, crops: Tensor, mel: Tensor) -> tuple[Tensor, Tensor]:
        return self.mouth(crops), self.audio(mel)

    @staticmethod
    def similarity(e_l: Tensor, e_a: Tensor, eps: float = 1e-8) -> Tensor:
        """S3D-NeRF Eq. (6): cos(e_l, e_a) = e_l . e_a / max(|e_l| |e_a|, eps). (B, D), (B, D) -> (B,)."""
        return (e_l * e_a).sum(-1) / torch.clamp(e_l.norm(dim=-1) * e_a.norm(dim=-1), min=eps)


def save_sync(model: SyncNet, path: str | Path) -> Path:
    """Save config + weights (a plain dict of tensors and numbers) atomically (``talklib.checkpoint``)."""
    from talklib import checkpoint

    return checkpoint.save(path, {"config": asdict(model.cfg), "state": model.state_dict()})


def load_sync(path: str | Path, map_location="cpu") -> SyncNet:
    """Load a model written by ``save_sync`` (checked by ``talklib.checkpoint.load``), in eval mode."""
    from talklib import checkpoint

    fix = "give a file written by talklib.sync.model.save_sync (notebook 04 saves <run_dir>/models/sync.pt)"
    blob = checkpoint.load(path, "sync model", map_location, required_keys=("config", "state"), fix=fix)
    try:
        # checkpoints written before input_norm existed took the crops as they are
        model = SyncNet(SyncConfig(**{"input_norm": False, **blob["config"]}))
        model.load_state_dict(blob["state"])
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"sync model {path} does not fit talklib's sync expert ({type(e).__name__}: its config "
                        f"or weights are of another version); {fix}") from None
    return model.eval()


def l2norm(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1, eps=1e-8)
