"""AD-NeRF's audio conditioning: a per-frame audio window -> an audio net -> temporal attention -> the code.

Disentangled-audio NeRF Eq. (7), ``F(a_c, a_r, a_p, d, x) -> (c, sigma)``, feeds SpeechSplit's codes to
the field "as in AD-NeRF". AD-NeRF (read from its code, ``../shared/REFERENCE.md``) turns each frame's
16-step DeepSpeech window into a 64-d code with ``AudioNet`` (stride-2 Conv1d over time, LeakyReLU 0.02,
then two linear layers) and smooths it with ``AudioAttNet``: a Conv1d stack scores the codes of frames
i-4 ... i+3 and a softmax over those 8 frames weights their sum. ``Conditioner`` does exactly that for
any audio parts (their windows concatenated channel-wise), and passes 3DMM parts through unchanged:

    cond = [3DMM parts | AudioAttNet(AudioNet(window_{i-4}), ..., AudioNet(window_{i+3})) | f_illu]

Differences from AD-NeRF, said plainly: the attention is on from the first step (AD-NeRF switches it on
halfway through training with 5x the learning rate), and the code enters the field through its
condition MLP (``talklib.nerf.field``), not at the input and skip layers of an 8-layer MLP.
Taught in notebook 05 (the audio-conditioned NeRF).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from talklib.condition.spec import Part, parse, to_text

WINDOW = 16          # 50 Hz steps per audio window (AD-NeRF's DeepSpeech window, 320 ms)


class AudioNet(nn.Module):
    """AD-NeRF AudioNet: window (B, T, C) -> code (B, dim). Stride-2 convolutions over time until one
    step is left (C -> 32 -> 32 -> 64 -> 64 for T = 16), then linear 64 -> 64 -> dim."""

    def __init__(self, channels: int, steps: int = WINDOW, dim: int = 32):
        super().__init__()
        widths, layers, c, t = [32, 32, 64, 64], [], channels, steps
        for i in range(max(1, (steps - 1).bit_length())):
            w = widths[min(i, 3)]
            layers += [nn.Conv1d(c, w, 3, stride=2, padding=1), nn.LeakyReLU(0.02)]
            c, t = w, (t + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c * t, 64), nn.LeakyReLU(0.02), nn.Linear(64, dim))

    def forward(self, win: Tensor) -> Tensor:
        return self.fc(self.conv(win.transpose(1, 2)).flatten(1))


class AudioAttention(nn.Module):
    """AD-NeRF AudioAttNet: codes of K neighbouring frames (B, K, dim) -> their softmax-weighted sum (B, dim)."""

    def __init__(self, dim: int, frames: int = 8):
        super().__init__()
        chans = [dim, 16, 8, 4, 2, 1]
        self.conv = nn.Sequential(*[m for a, b in zip(chans, chans[1:])
                                    for m in (nn.Conv1d(a, b, 3, padding=1), nn.LeakyReLU(0.02))])
        self.score = nn.Linear(frames, frames)

    def weights(self, codes: Tensor) -> Tensor:
        """(B, K, dim) -> attention weights (B, K), summing to 1 over the K frames."""
        s = self.conv(codes.transpose(1, 2))[:, 0]          # (B, K)
        return torch.softmax(self.score(s), dim=-1)

    def forward(self, codes: Tensor) -> Tensor:
        return (self.weights(codes)[..., None] * codes).sum(dim=1)


@dataclass
class ConditionConfig:
    """What a field is conditioned on (``spec.parse`` text) and the sizes of its audio network.

    frames: neighbouring frames the attention sees (AD-NeRF: 8, i-4 ... i+3; 1: no attention);
    audio_dim: size of the audio code handed to the field.
    """

    conditions: str
    audio_dim: int = 32
    frames: int = 8
    dims: dict = field(default_factory=dict)   # name -> size, filled from the data (audio channels)

    @property
    def parts(self) -> list[Part]:
        return [Part(p.name, int(self.dims.get(p.name, p.dim))) for p in parse(self.conditions)]

    @property
    def audio_channels(self) -> int:
        return sum(p.dim for p in self.parts if p.is_audio)

    def raw_layout(self) -> dict[str, int]:
        """Named slices of the per-frame vector the scene stores: 3DMM parts, ``audio`` (frames x 16 x
        channels, the windows of the neighbouring frames), f_illu."""
        out = {}
        for p in self.parts:
            if p.is_audio:
                out["audio"] = self.frames * WINDOW * self.audio_channels
            else:
                out[p.name] = p.dim
        return out

    @property
    def out_dim(self) -> int:
        """Size of the condition vector the field receives."""
        n3 = sum(p.dim for p in self.parts if not p.is_audio)
        return n3 + (self.audio_dim if self.audio_channels else 0)

    @property
    def illu_last(self) -> bool:
        ps = self.parts
        return bool(ps) and ps[-1].name == "f_illu"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_parts(cls, parts: list[Part], **kw) -> "ConditionConfig":
        return cls(conditions=to_text(parts), dims={p.name: p.dim for p in parts}, **kw)


class Conditioner(nn.Module):
    """The per-frame vector the scene stores (B, raw_dim) -> the condition the field sees (B, out_dim).

    3DMM parts pass through; the audio windows of the K neighbouring frames go through ``AudioNet``
    (each) and ``AudioAttention`` (together). With no audio part this is the identity."""

    def __init__(self, cfg: ConditionConfig):
        super().__init__()
        self.cfg = cfg
        self.layout = cfg.raw_layout()
        self.has_audio = "audio" in self.layout
        if self.has_audio:
            self.audio_net = AudioNet(cfg.audio_channels, WINDOW, cfg.audio_dim)
            self.attention = AudioAttention(cfg.audio_dim, cfg.frames) if cfg.frames > 1 else None

    @property
    def raw_dim(self) -> int:
        return sum(self.layout.values())

    def audio_code(self, audio: Tensor) -> Tensor:
        """audio (B, frames * 16 * channels) -> the smoothed code (B, audio_dim)."""
        B, K = audio.shape[0], self.cfg.frames
        codes = self.audio_net(audio.reshape(B * K, WINDOW, self.cfg.audio_channels)).view(B, K, -1)
        return codes[:, K // 2] if self.attention is None else self.attention(codes)

    def forward(self, raw: Tensor) -> Tensor:
        if not self.has_audio:
            return raw
        out, s = [], 0
        for name, d in self.layout.items():
            x = raw[:, s:s + d]
            out.append(self.audio_code(x) if name == "audio" else x)
            s += d
        return torch.cat(out, dim=1)
