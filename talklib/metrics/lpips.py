"""LPIPS (Zhang et al. 2018), AlexNet variant v0.1 — architecture here, weights from a local file only.

LPIPS needs trained weights (an ImageNet AlexNet plus the learned per-channel "lin" layers) that
cannot be downloaded at run time. ``load_lpips(path)`` reads them from disk; with no path the metric
is *unavailable* and every caller reports ``None`` — it is never replaced by something else.

Accepted files (``torch.load(..., weights_only=True)`` state dicts):

- one file with the full LPIPS state dict as the ``lpips`` package holds it in memory
  (``net.slice1.0.weight`` ... ``lin0.model.1.weight`` ...), or
- ``path`` = the lin layers as the ``lpips`` package ships them (``weights/v0.1/alex.pth``, keys
  ``lin0.model.1.weight`` ...) plus ``backbone_path`` = a torchvision AlexNet state dict
  (``features.0.weight`` ...).

Distance: d(x, y) = sum_l mean_hw || w_l * (n(f_l(x)) - n(f_l(y))) ||^2, with n() unit-normalising the
channel vector at each position, images scaled to [-1, 1] then shifted/scaled per channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from talklib.errors import UserError

ALEX_CHANNELS = (64, 192, 384, 256, 256)
# torchvision alexnet.features layer index ranges of the five LPIPS slices
_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))


def _alexnet_features() -> list[nn.Module]:
    """torchvision's ``alexnet().features`` layer list (indices matter for state-dict keys)."""
    return [
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=False),
    ]


class _ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale


class _AlexSlices(nn.Module):
    def __init__(self):
        super().__init__()
        layers = _alexnet_features()
        for k, (a, b) in enumerate(_SLICES, start=1):
            seq = nn.Sequential()
            for i in range(a, b):
                seq.add_module(str(i), layers[i])
            setattr(self, f"slice{k}", seq)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for k in range(1, 6):
            x = getattr(self, f"slice{k}")(x)
            outs.append(x)
        return outs


class _Lin(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS-Alex v0.1. ``forward(x, y)``: images (B, 3, H, W) in [-1, 1] -> distances (B,)."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = _ScalingLayer()
        self.net = _AlexSlices()
        for k, c in enumerate(ALEX_CHANNELS):
            setattr(self, f"lin{k}", _Lin(c))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.net(self.scaling_layer(x))
        fy = self.net(self.scaling_layer(y))
        total = 0.0
        for k, (a, b) in enumerate(zip(fx, fy)):
            a = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = getattr(self, f"lin{k}").model[1]((a - b) ** 2)  # dropout is inactive in eval
            total = total + d.mean(dim=(2, 3))
        return total[:, 0]


def _load_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"LPIPS weights {path} do not exist: give the path of an LPIPS state dict (see talklib.metrics.lpips)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(f"LPIPS weights {path} cannot be read ({type(e).__name__}): give a torch state dict") from None
    if not isinstance(state, dict):
        raise UserError(f"LPIPS weights {path} hold no state dict: save model.state_dict()")
    return state


def load_lpips(path: str | Path, backbone_path: str | Path | None = None) -> LPIPS:
    """LPIPS with weights from local files (see the module docstring for the accepted layouts)."""
    state = dict(_load_state(path))
    if backbone_path is not None:
        for key, value in _load_state(backbone_path).items():
            if key.startswith("features."):
                idx = int(key.split(".")[1])
                for k, (a, b) in enumerate(_SLICES, start=1):
                    if a <= idx < b:
                        state[f"net.slice{k}.{idx}.{key.split('.', 2)[2]}"] = value
    model = LPIPS()
    want = model.state_dict()
    missing = [k for k in want if k not in state and not k.startswith("scaling_layer.")]
    if missing:
        raise UserError(f"LPIPS weights lack {len(missing)} tensors (e.g. {missing[0]}): give the full LPIPS "
                        "state dict, or the lin weights plus backbone_path= a torchvision AlexNet state dict")
    for k, v in state.items():
        if k in want and tuple(v.shape) != tuple(want[k].shape):
            raise UserError(f"LPIPS tensor {k} has shape {tuple(v.shape)}, expected {tuple(want[k].shape)}: "
                            "these are not LPIPS-Alex v0.1 weights")
    model.load_state_dict({k: state.get(k, want[k]) for k in want})
    return model.eval()


@torch.no_grad()
def lpips_distance(model: LPIPS | None, pred, ref, batch: int = 16) -> float | None:
    """Mean LPIPS over frames ``(N, H, W, 3)`` (uint8 or floats in [0, 1]); None when ``model`` is None."""
    if model is None:
        return None
    p, r = np.asarray(pred), np.asarray(ref)
    if p.shape != r.shape:
        raise UserError(f"videos differ in shape {p.shape} vs {r.shape}: compare videos of one size")
    if p.ndim == 3:
        p, r = p[None], r[None]
    scale = 255.0 if p.dtype == np.uint8 else 1.0
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(p), batch):
        x = torch.from_numpy(p[i:i + batch].astype(np.float32) / scale).permute(0, 3, 1, 2).to(dev) * 2 - 1
        y = torch.from_numpy(r[i:i + batch].astype(np.float32) / scale).permute(0, 3, 1, 2).to(dev) * 2 - 1
        out.append(model(x, y).cpu())
    return float(torch.cat(out).mean())
