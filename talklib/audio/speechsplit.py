"""SpeechSplit: content, rhythm and pitch codes through three information bottlenecks.

Disentangled audio NeRF Eq. (5)–(6), after SpeechSplit (Qian et al., 2020):

    A_c = E_c(C_c),  A_r = E_r(C_r),  A_p = E_p(C_p)          (5)
    S_hat = D(A_c, A_r, A_p)                                  (6)

- ``C_c``: the mel spectrogram S (M, 80), **randomly resampled** in time (segments of 19–31 frames,
  each stretched by a factor in [0.5, 1.5)) at the input and after every conv layer — so the content
  code cannot carry timing;
- ``C_p``: the speaker-normalised F0 as a 257-way one-hot, resampled together with the mel (the
  content and pitch encoders share one resampling per layer, as in SpeechSplit's ``Encoder_7``);
- ``C_r``: the *original* mel, through a very narrow code (2-d) — it can only carry timing (rhythm).

Codes are downsampled by ``freq`` (8): the forward LSTM state at the end of each block of 8 frames and
the backward state at its start, then repeated back to the frame rate for the decoder. The decoder is
a BiLSTM over [A_c | A_r | A_p | speaker one-hot] -> 80 mels, trained with MSE. Random resampling is
only active in ``train()`` mode (SpeechSplit's ``InterpLnr``); in ``eval()`` the codes see clean input.

Shapes: mel (B, M, 80), f0_onehot (B, M, 257), codes (B, M, 2*neck). Frames at 62.5 Hz (hop 256).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from talklib.audio import features as F


@dataclass(frozen=True)
class SpeechSplitConfig:
    """Sizes; the defaults are SpeechSplit's (REFERENCE.md). The small preset shrinks the widths only;
    the bottleneck sizes (8 / 1 / 32 per direction, downsampling 8) define the method and stay."""

    n_mels: int = 80
    f0_dim: int = F.F0_BINS + 1
    conv_content: int = 512
    neck_content: int = 8
    conv_pitch: int = 256
    neck_pitch: int = 32
    conv_rhythm: int = 128
    neck_rhythm: int = 1
    dec_dim: int = 512
    dec_layers: int = 3
    freq: int = 8
    n_speakers: int = 1
    seg_min: int = 19
    seg_max: int = 31  # inclusive: SpeechSplit's randint(19, 32)
    scale_min: float = 0.5
    scale_max: float = 1.5

    @property
    def code_dims(self) -> tuple[int, int, int]:
        """(content, rhythm, pitch) code widths: 2 x neck each (bidirectional)."""
        return 2 * self.neck_content, 2 * self.neck_rhythm, 2 * self.neck_pitch


def random_resample_index(length: int, generator: torch.Generator, seg_min: int = 19, seg_max: int = 31,
                          scale_min: float = 0.5, scale_max: float = 1.5) -> Tensor:
    """Fractional source positions (length,) of one random resampling.

    The output is cut into segments of ``seg_min..seg_max`` frames; a segment with factor ``s`` reads
    ``s`` source frames per output frame (s < 1 stretches, s > 1 compresses). The output keeps the
    input's length: positions past the end are clamped to the last frame (SpeechSplit pads).
    """
    pos, start = [], 0.0
    while len(pos) == 0 or sum(len(p) for p in pos) < length:
        n = int(torch.randint(seg_min, seg_max + 1, (1,), generator=generator))
        s = float(scale_min + (scale_max - scale_min) * torch.rand(1, generator=generator))
        pos.append(start + s * torch.arange(n, dtype=torch.float32))
        start += s * n
    return torch.cat(pos)[:length].clamp(max=length - 1)


def resample_time(x: Tensor, pos: Tensor) -> Tensor:
    """Linear interpolation of x (B, C, M) at fractional positions pos (B, M') -> (B, C, M')."""
    lo = pos.floor().long().clamp(0, x.shape[-1] - 1)
    hi = (lo + 1).clamp(max=x.shape[-1] - 1)
    w = (pos - lo.float()).unsqueeze(1)
    gather = lambda idx: torch.gather(x, 2, idx.unsqueeze(1).expand(-1, x.shape[1], -1))  # noqa: E731
    return gather(lo) * (1 - w) + gather(hi) * w


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    groups = max(1, min(32, c_out // 8))
    return nn.Sequential(nn.Conv1d(c_in, c_out, 5, padding=2), nn.GroupNorm(groups, c_out), nn.ReLU())


def _downsample(out: Tensor, neck: int, freq: int) -> Tensor:
    """BiLSTM output (B, M, 2*neck) -> codes (B, ceil(M/freq), 2*neck): forward at block ends,
    backward at block starts (SpeechSplit)."""
    m = out.shape[1]
    ends = torch.arange(freq - 1, m + freq - 1, freq).clamp(max=m - 1)
    starts = torch.arange(0, m, freq)
    return torch.cat([out[:, ends, :neck], out[:, starts, neck:]], dim=-1)


def _upsample(codes: Tensor, freq: int, m: int) -> Tensor:
    return codes.repeat_interleave(freq, dim=1)[:, :m]


class SpeechSplit(nn.Module):
    """Encoders E_c, E_r, E_p and decoder D of Eq. (5)–(6)."""

    def __init__(self, cfg: SpeechSplitConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.content_convs = nn.ModuleList([_conv_block(c.n_mels if i == 0 else c.conv_content, c.conv_content)
                                            for i in range(3)])
        self.pitch_convs = nn.ModuleList([_conv_block(c.f0_dim if i == 0 else c.conv_pitch, c.conv_pitch)
                                          for i in range(3)])
        self.content_lstm = nn.LSTM(c.conv_content, c.neck_content, 2, batch_first=True, bidirectional=True)
        self.pitch_lstm = nn.LSTM(c.conv_pitch, c.neck_pitch, 1, batch_first=True, bidirectional=True)
        self.rhythm_conv = _conv_block(c.n_mels, c.conv_rhythm)
        self.rhythm_lstm = nn.LSTM(c.conv_rhythm, c.neck_rhythm, 1, batch_first=True, bidirectional=True)
        d_in = sum(c.code_dims) + c.n_speakers
        self.dec_lstm = nn.LSTM(d_in, c.dec_dim, c.dec_layers, batch_first=True, bidirectional=True)
        self.dec_out = nn.Linear(2 * c.dec_dim, c.n_mels)

    # Eq. (5) --------------------------------------------------------------------------------------
    def encode(self, mel: Tensor, f0_onehot: Tensor, generator: torch.Generator | None = None,
               upsample: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Codes (A_c, A_r, A_p), each (B, M, 2*neck) (or (B, ceil(M/8), 2*neck) with upsample=False).

        In training mode the content/pitch path is randomly resampled (needs ``generator``)."""
        c = self.cfg
        b, m, _ = mel.shape
        xc, xp = mel.transpose(1, 2), f0_onehot.transpose(1, 2)  # (B, C, M)

        def contaminate(xc, xp):
            if not self.training:
                return xc, xp
            pos = torch.stack([random_resample_index(m, generator, c.seg_min, c.seg_max, c.scale_min, c.scale_max)
                               for _ in range(b)]).to(mel.device)
            return resample_time(xc, pos), resample_time(xp, pos)

        xc, xp = contaminate(xc, xp)
        for conv_c, conv_p in zip(self.content_convs, self.pitch_convs):
            xc, xp = contaminate(conv_c(xc), conv_p(xp))
        out_c, _ = self.content_lstm(xc.transpose(1, 2))
        out_p, _ = self.pitch_lstm(xp.transpose(1, 2))
        out_r, _ = self.rhythm_lstm(self.rhythm_conv(mel.transpose(1, 2)).transpose(1, 2))
        codes = (_downsample(out_c, c.neck_content, c.freq), _downsample(out_r, c.neck_rhythm, c.freq),
                 _downsample(out_p, c.neck_pitch, c.freq))
        if not upsample:
            return codes
        return tuple(_upsample(k, c.freq, m) for k in codes)

    # Eq. (6) --------------------------------------------------------------------------------------
    def decode(self, a_c: Tensor, a_r: Tensor, a_p: Tensor, speaker: Tensor | None = None) -> Tensor:
        """S_hat (B, M, 80) from frame-rate codes and an optional speaker one-hot (B, n_speakers)."""
        parts = [a_c, a_r, a_p]
        if self.cfg.n_speakers:
            if speaker is None:
                speaker = torch.zeros(a_c.shape[0], self.cfg.n_speakers, device=a_c.device)
            parts.append(speaker[:, None, :].expand(-1, a_c.shape[1], -1))
        out, _ = self.dec_lstm(torch.cat(parts, dim=-1))
        return self.dec_out(out)

    def forward(self, mel: Tensor, f0_onehot: Tensor, speaker: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        return self.decode(*self.encode(mel, f0_onehot, generator), speaker)


# ------------------------------------------------------------------------------------------------
# inputs, training, codes
def speechsplit_inputs(audio: np.ndarray, f0_stats: tuple[float, float] | None = None,
                       f0_range: tuple[float, float] = F.DEFAULT_F0_RANGE) -> dict[str, np.ndarray]:
    """Mel (M, 80), F0 one-hot (M, 257), normalised F0 (M,) (-1 unvoiced), F0 in Hz (M,), at the mel rate
    (62.5 Hz). F0: RAPT at 100 Hz (as in :func:`talklib.audio.features.compute_features`), resampled."""
    mel = F.speechsplit_mel(audio)
    f0_native, t_native = F.f0_rapt(audio, f0_range=f0_range)  # the same 100 Hz track the features use
    f0 = F.f0_resample(f0_native, t_native, F.mel_times(len(mel)))
    norm = F.normalise_f0(f0, f0_stats if f0_stats is not None else F.f0_stats(f0))
    return {"mel": mel, "f0_onehot": F.f0_onehot(F.quantise_f0(norm)), "f0_norm": norm, "f0_hz": f0}


def random_crops(items: list[dict], batch: int, length: int, rng: np.random.Generator) -> dict[str, Tensor]:
    """A batch of random crops (zero-padded) of length ``length`` from items with mel / f0_onehot / speaker."""
    mels, f0s, spk = [], [], []
    for _ in range(batch):
        it = items[int(rng.integers(len(items)))]
        m = len(it["mel"])
        s = int(rng.integers(0, max(1, m - length + 1)))
        pad = lambda a: np.pad(a[s:s + length], ((0, max(0, length - (m - s))), (0, 0)))  # noqa: E731
        mels.append(pad(it["mel"]))
        f0s.append(pad(it["f0_onehot"]))
        spk.append(it["speaker"])
    return {"mel": torch.from_numpy(np.stack(mels)), "f0_onehot": torch.from_numpy(np.stack(f0s)),
            "speaker": torch.from_numpy(np.stack(spk).astype(np.float32))}


def train_speechsplit(model: SpeechSplit, items: list[dict], steps: int, batch: int = 8, length: int = 128,
                      lr: float = 1e-3, seed: int = 0, device: torch.device | str = "cpu",
                      progress: bool = True, lr_final: float = 1.0) -> list[float]:
    """Train with MSE(S_hat, S) on random crops; returns the loss curve (one value per step).

    items: dicts with ``mel`` (M, 80), ``f0_onehot`` (M, 257), ``speaker`` (n_speakers,) one-hot.
    The learning rate follows a cosine from ``lr`` down to ``lr * lr_final`` (1.0: constant).
    """
    if steps < 1 or batch < 1 or length < 1 or lr <= 0 or not 0 < lr_final <= 1:
        raise ValueError(f"train_speechsplit needs steps, batch, length >= 1, lr > 0 and 0 < lr_final <= 1 "
                         f"(got {steps}, {batch}, {length}, {lr}, {lr_final})")
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cosine = lambda i: lr_final + (1 - lr_final) * 0.5 * (1 + np.cos(np.pi * i / max(1, steps - 1)))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    losses = []
    for _ in tqdm(range(steps), desc="SpeechSplit", disable=not progress):
        b = {k: v.to(device) for k, v in random_crops(items, batch, length, rng).items()}
        pred = model(b["mel"], b["f0_onehot"], b["speaker"], generator=gen)
        loss = torch.mean((pred - b["mel"]) ** 2)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def codes_of(model: SpeechSplit, mel: np.ndarray, f0_onehot: np.ndarray,
             device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Clean (eval-mode) codes of one utterance at the mel rate: content (M, 16), rhythm (M, 2), pitch (M, 64)."""
    model.eval()
    a_c, a_r, a_p = model.encode(torch.from_numpy(mel)[None].to(device), torch.from_numpy(f0_onehot)[None].to(device))
    return {"content": a_c[0].cpu().numpy(), "rhythm": a_r[0].cpu().numpy(), "pitch": a_p[0].cpu().numpy()}


@torch.no_grad()
def reconstruct(model: SpeechSplit, codes: dict[str, np.ndarray], speaker: np.ndarray | None = None,
                device: torch.device | str = "cpu") -> np.ndarray:
    """S_hat (M, 80) from mel-rate codes (any mix of utterances' codes of equal length M)."""
    t = lambda k: torch.from_numpy(codes[k])[None].to(device)  # noqa: E731
    spk = None if speaker is None else torch.from_numpy(np.asarray(speaker, np.float32))[None].to(device)
    return model.decode(t("content"), t("rhythm"), t("pitch"), spk)[0].cpu().numpy()


@torch.no_grad()
def code_reliance(model: SpeechSplit, items: list[dict], device: torch.device | str = "cpu") -> dict[str, float]:
    """Which code does the decoder D of Eq. (6) use? MSE(S_hat, S) over ``items`` (dicts with ``mel``,
    ``f0_onehot``, ``speaker``) with all codes (``all``), and with one kind replaced by its mean over
    every frame of the items (``no content`` / ``no rhythm`` / ``no pitch``): a code the decoder relies
    on raises the error when it is taken away; one it ignores leaves the error where it was."""
    codes = [codes_of(model, it["mel"], it["f0_onehot"], device) for it in items]
    means = {k: np.concatenate([c[k] for c in codes]).mean(0) for k in ("content", "rhythm", "pitch")}
    out = {}
    for name, drop in (("all", None), ("no content", "content"), ("no rhythm", "rhythm"), ("no pitch", "pitch")):
        err, n = 0.0, 0
        for it, c in zip(items, codes):
            if drop is not None:
                c = {**c, drop: np.broadcast_to(means[drop], c[drop].shape).astype(np.float32)}
            err += float(np.sum((reconstruct(model, c, it.get("speaker"), device) - it["mel"]) ** 2))
            n += it["mel"].size
        out[name] = err / n
    return out


def codes_per_frame(codes: dict[str, np.ndarray], n_frames: int) -> dict[str, np.ndarray]:
    """Mel-rate codes (M, D) -> one row per video frame (N, D) (interpolated onto the 50 Hz stream, averaged)."""
    out = {}
    for k, v in codes.items():
        out[k] = F.per_frame(F.to_stream(v, F.mel_times(len(v)), n_frames))
    return out


def save_speechsplit(model: SpeechSplit, path) -> None:
    """Checkpoint (config + weights), written atomically by ``talklib.checkpoint``; load with
    :func:`load_speechsplit`."""
    import dataclasses

    from talklib import checkpoint

    checkpoint.save(path, {"config": dataclasses.asdict(model.cfg), "state": model.state_dict()})


def load_speechsplit(path) -> SpeechSplit:
    """The model a :func:`save_speechsplit` file holds, in eval mode. The file is checked by
    ``talklib.checkpoint.load`` (readable, undamaged, finite); a missing, damaged or foreign file, or one
    whose weights do not fit its config, is a one-line ``UserError``."""
    from talklib import checkpoint
    from talklib.errors import UserError

    fix = "give a file written by talklib.audio.speechsplit.save_speechsplit, or retrain"
    ck = checkpoint.load(path, "SpeechSplit model", required_keys=("config", "state"), fix=fix)
    try:
        model = SpeechSplit(SpeechSplitConfig(**ck["config"]))
        model.load_state_dict(ck["state"])
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"SpeechSplit model {path} does not fit talklib's SpeechSplit ({type(e).__name__}: "
                        f"its config or weights are of another version); {fix}") from None
    return model.eval()


def swap_codes(codes_a: dict[str, np.ndarray], codes_b: dict[str, np.ndarray], take_from_b: tuple[str, ...]
               ) -> dict[str, np.ndarray]:
    """Codes of utterance A with the kinds in ``take_from_b`` (``content``/``rhythm``/``pitch``) from B.

    Both are cut to the shorter length M (codes live on each utterance's own time axis, so swaps are
    meant for parallel utterances: the same text by other voices / speaking rates)."""
    bad = set(take_from_b) - {"content", "rhythm", "pitch"}
    if bad:
        raise ValueError(f"unknown code kinds {sorted(bad)}: use content, rhythm or pitch")
    m = min(len(codes_a["content"]), len(codes_b["content"]))
    return {k: (codes_b if k in take_from_b else codes_a)[k][:m] for k in ("content", "rhythm", "pitch")}
