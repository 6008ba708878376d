"""The official SyncNet (``syncnet_v2.model`` of joonson/syncnet_python) — architecture and loader.

Its weights cannot be downloaded here; a user who has the file loads it with
``load_syncnet_v2(path)`` (a state dict, ``torch.load(weights_only=True)``; the layer names and
indices below are the ones that file uses: ``netcnnaud.*``, ``netfcaud.*``, ``netcnnlip.*``,
``netfclip.*``). ``SyncNetV2.embed_video`` / ``embed_audio`` then give per-window embeddings and
``talklib.sync.offset.sync_score`` the AV offset / LSE-D / LSE-C on the scale the papers report.

Inputs, as syncnet_python feeds them:

- video: 224x224 face crops, **BGR**, 0..255 floats (no normalisation), 5 frames per window:
  (B, 3, 5, 224, 224);
- audio: 13 MFCCs at 100 Hz (``python_speech_features.mfcc`` defaults, re-implemented in ``psf_mfcc``
  here), 20 steps (0.2 s) per window: (B, 1, 13, 20); window i starts at MFCC step 4 i.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from talklib.errors import UserError


def _bn_relu2(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


def _bn_relu3(c: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]


def _fc(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, dim))


class SyncNetV2(nn.Module):
    """syncnet_python's ``S`` model (1024-d embeddings)."""

    def __init__(self, dim: int = 1024):
        super().__init__()
        aud: list[nn.Module] = [nn.Conv2d(1, 64, 3, 1, 1), *_bn_relu2(64), nn.MaxPool2d(1, 1),
                                nn.Conv2d(64, 192, 3, 1, 1), *_bn_relu2(192), nn.MaxPool2d(3, (1, 2)),
                                nn.Conv2d(192, 384, 3, padding=1), *_bn_relu2(384),
                                nn.Conv2d(384, 256, 3, padding=1), *_bn_relu2(256),
                                nn.Conv2d(256, 256, 3, padding=1), *_bn_relu2(256), nn.MaxPool2d(3, 2),
                                nn.Conv2d(256, 512, (5, 4)), nn.BatchNorm2d(512), nn.ReLU()]
        lip: list[nn.Module] = [nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)), *_bn_relu3(96),
                                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                                nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), *_bn_relu3(256),
                                nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256),
                                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256),
                                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3(256),
                                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                                nn.Conv3d(256, 512, (1, 6, 6)), *_bn_relu3(512)]
        self.netcnnaud = nn.Sequential(*aud)
        self.netfcaud = _fc(dim)
        self.netfclip = _fc(dim)
        self.netcnnlip = nn.Sequential(*lip)

    def forward_aud(self, x: Tensor) -> Tensor:
        """(B, 1, 13, 20) MFCC windows -> (B, 1024)."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: Tensor) -> Tensor:
        """(B, 3, 5, 224, 224) BGR 0..255 face windows -> (B, 1024)."""
        return self.netfclip(self.netcnnlip(x).flatten(1))


def load_syncnet_v2(path: str | Path, map_location="cpu") -> SyncNetV2:
    """The official model with weights from a local state-dict file, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"SyncNet weights {path} do not exist: give the path of syncnet_v2.model "
                        f"(from joonson/syncnet_python) or use talklib's own expert (notebook 04)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"SyncNet weights {path} cannot be read ({type(e).__name__}): give a torch state dict") from None
    if not isinstance(state, dict):
        raise UserError(f"SyncNet weights {path} hold no state dict: give syncnet_v2.model")
    model = SyncNetV2()
    want = model.state_dict()
    missing = [k for k in want if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"SyncNet weights {path} lack {len(missing)} tensors (e.g. {missing[0]}): "
                        f"they are not syncnet_v2 weights")
    for k in want:
        if k in state and tuple(state[k].shape) != tuple(want[k].shape):
            raise UserError(f"SyncNet tensor {k} has shape {tuple(state[k].shape)}, expected "
                            f"{tuple(want[k].shape)}: these are not syncnet_v2 weights")
    with torch.no_grad():  # syncnet_python's loadParameters: copy tensor by tensor
        for k, v in want.items():
            if k in state:
                v.copy_(state[k])
    return model.eval()


# ------------------------------------------------------------------------------------------------
# python_speech_features.mfcc with its defaults (winlen 0.025, winstep 0.01, 13 ceps, 26 filters,
# nfft 512, preemph 0.97, ceplifter 22, appendEnergy) — what syncnet_python feeds the audio branch.


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def psf_mfcc(signal, sample_rate: int = 16000, winlen: float = 0.025, winstep: float = 0.01,
             numcep: int = 13, nfilt: int = 26, nfft: int = 512, preemph: float = 0.97,
             ceplifter: int = 22) -> np.ndarray:
    """(T,) samples (int16 scale or floats) -> (frames, 13) MFCC at 100 Hz, python_speech_features style."""
    from scipy.fft import dct

    x = np.asarray(signal, np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    flen, fstep = int(round(winlen * sample_rate)), int(round(winstep * sample_rate))
    n = 1 if len(x) <= flen else 1 + int(np.ceil((len(x) - flen) / fstep))
    pad = np.concatenate([x, np.zeros((n - 1) * fstep + flen - len(x))])
    idx = np.arange(n)[:, None] * fstep + np.arange(flen)[None, :]
    frames = pad[idx]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    mel_pts = np.linspace(_hz_to_mel(0), _hz_to_mel(sample_rate / 2), nfilt + 2)
    bins = np.floor((nfft + 1) * _mel_to_hz(mel_pts) / sample_rate).astype(int)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(bins[j], bins[j + 1]):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(bins[j + 1], bins[j + 2]):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    feat = power @ fb.T
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    ceps = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    lift = 1 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter)
    ceps = ceps * lift
    ceps[:, 0] = np.log(energy)
    return ceps


@torch.no_grad()
def syncnet_v2_embeddings(model: SyncNetV2, faces_bgr: np.ndarray, audio_int16: np.ndarray,
                          batch: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """syncnet_python's ``evaluate`` feature loop: faces (N, 224, 224, 3) BGR uint8, 16 kHz audio ->
    video and audio embeddings (N - 5, 1024) each (``lastframe = min(N, len(audio) // 640) - 5``)."""
    dev = next(model.parameters()).device
    mfcc = psf_mfcc(audio_int16, 16000).T  # (13, M)
    cct = torch.from_numpy(mfcc[None, None].astype(np.float32))
    im = torch.from_numpy(np.asarray(faces_bgr, np.float32)).permute(3, 0, 1, 2)[None]  # (1, 3, N, H, W)
    min_length = min(len(faces_bgr), len(audio_int16) // 640)
    last = min_length - 5
    if last < 1:
        raise UserError("video is shorter than 6 frames: SyncNet needs at least 6 frames with audio")
    vf, af = [], []
    for i in range(0, last, batch):
        r = range(i, min(last, i + batch))
        vf.append(model.forward_lip(torch.cat([im[:, :, v:v + 5] for v in r]).to(dev)).cpu())
        af.append(model.forward_aud(torch.cat([cct[:, :, :, v * 4:v * 4 + 20] for v in r]).to(dev)).cpu())
    return torch.cat(vf).numpy(), torch.cat(af).numpy()
