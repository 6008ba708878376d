"""Causal streaming: audio pushed as it arrives, frames out as soon as the audio they need is there.

``LiveTalker`` wraps a per-speaker NeRF checkpoint (any that ``python -m talklib render`` takes: 3DMM expression
from audio, SpeechSplit codes, f_a, DeepSpeech-like, MFCC, NeRF-3DTalker's prior) and turns a stream of 16 kHz
mono samples into 25 fps frames. Frame i covers samples [640 i, 640 (i + 1)); it is drawn once the stream holds
``lookahead_ms`` of audio after that, from conditions computed on a sliding window — ``context_s`` seconds
before the frame (0.4 s for a 3DMM-expression checkpoint, 1 s for an audio-conditioned one) up to the newest sample, with the same functions as ``render`` (``talklib.nerf.talk.conditions_from_audio``).
The stream starts with ``context_s`` of silence, so the first frame needs no more audio than any other.

**What the look-ahead costs.** The conditions were trained offline on AD-NeRF's windows, which look into the
future: a 16-step mel window centred on the frame reaches 140 ms past its end, AD-NeRF's audio net also reads
the windows of the next 3 frames (+120 ms), the STFT half a window (+32 ms), the expression regressor's smoothing
one frame (+40 ms). ``natural_lookahead_ms`` adds them up for a checkpoint (about 210 ms for a 3DMM-expression
checkpoint, 290 ms for an audio-conditioned one). With a shorter look-ahead the missing future is what the
offline code does at the end of a clip (edges repeated): a live frame is then not the offline frame, and
``benchmarks/live_latency.py`` measures how far (the conditions' error and the lip-sync score) beside the latency.
``lookahead_ms >= natural_lookahead_ms`` gives the offline conditions exactly (up to the window's start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talklib.errors import UserError

SAMPLE_RATE = 16000
HOP = SAMPLE_RATE // 25            # samples per video frame (40 ms)
ALIGN = 2 * HOP                    # windows start on multiples of 80 ms = 5 STFT hops of 256: the offline mel grid


@dataclass
class Frame:
    index: int                     # video frame i: samples [640 i, 640 (i + 1)) of the stream
    rgb: np.ndarray                # (H, W, 3) uint8


def natural_lookahead_ms(model, a2e) -> float:
    """How much audio past a frame's end the checkpoint's conditions read offline (see the module docstring)."""
    from talklib.audio.features import MEL_NFFT, STREAM_HZ, WINDOW

    step_ms = 1000 / STREAM_HZ
    window = (WINDOW // 2 + 1) * step_ms - 1000 / 25 + MEL_NFFT / 2 / SAMPLE_RATE * 1000   # 140 ms + 32 ms
    if a2e is not None:
        return window + 40.0                                   # predict()'s 3-frame smoothing
    frames = int((model.cfg.conditions or {}).get("frames", 8))
    return window + 40.0 * (frames - frames // 2 - 1)           # neighbours i+1 .. i+K-K/2-1


class LiveTalker:
    """One stream's state over a loaded checkpoint (``talker``: ``load_talker``'s (model, a2e, extra); several
    streams may share it). ``push(samples)`` -> the frames now ready; ``finish()`` -> the rest at the stream's end."""

    def __init__(self, talker, lookahead_ms: float = 80.0, context_s: float | None = None, batch: int = 4,
                 half: bool = False):
        self.model, self.a2e, self.extra = talker
        if context_s is None:       # the expression regressor reads 0.2 s back; SpeechSplit's BiLSTMs all they get
            context_s = 0.4 if self.a2e is not None else 1.0
        if not 0 <= lookahead_ms <= 2000:
            raise UserError(f"look-ahead {lookahead_ms:g} ms: give 0 to 2000 ms (80 is the default)")
        if not 0.3 <= context_s <= 10:
            raise UserError(f"context {context_s:g} s: give 0.3 to 10 s of past audio")
        self.lookahead = int(round(lookahead_ms / 1000 * SAMPLE_RATE))
        self.context = int(round(context_s * SAMPLE_RATE / ALIGN)) * ALIGN
        self.batch, self.half = int(batch), bool(half)
        self.audio = np.zeros(self.context, np.float32)       # the buffer; sample 0 of the stream is at self.context
        self.start = -self.context                             # stream position of self.audio[0]
        self.next = 0                                          # the next frame to draw
        self.received = 0                                      # samples of the stream pushed so far

    @property
    def lookahead_ms(self) -> float:
        return 1000 * self.lookahead / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[Frame]:
        """Append 16 kHz mono float samples; returns the frames whose audio (and look-ahead) is now complete."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise UserError("the audio holds NaN or infinite samples: send 16 kHz mono samples in [-1, 1]")
        self.audio = np.concatenate([self.audio, np.clip(x, -1, 1)])
        self.received += len(x)
        return self._draw(last=(self.received - self.lookahead) // HOP - 1)

    def finish(self) -> list[Frame]:
        """The stream ended: draw every frame its audio covers, the future cut where the audio ends."""
        return self._draw(last=self.received // HOP - 1)

    def _draw(self, last: int) -> list[Frame]:
        if last < self.next:
            return []
        import torch

        from talklib.nerf.talk import conditions_from_audio, iter_frames

        end = (self.received // HOP) * HOP                      # whole frames of audio only
        w0 = max(self.start, (self.next * HOP - self.context) // ALIGN * ALIGN)   # context before the first new frame
        seg = self.audio[w0 - self.start: end - self.start]
        with torch.no_grad():
            cond = conditions_from_audio(self.a2e, self.extra, seg, self.model)
        first = self.next - w0 // HOP                           # row of frame self.next (w0 is a multiple of HOP)
        rows = cond[first: first + last - self.next + 1]
        frames, i = [], self.next
        for batch in iter_frames(self.model, self.extra, rows, batch=self.batch, progress=False, half=self.half):
            for rgb in batch:
                frames.append(Frame(i, rgb))
                i += 1
        self.next = last + 1
        keep = max(self.start, (self.next * HOP - self.context) // ALIGN * ALIGN)   # drop what no later window reads
        self.audio = self.audio[keep - self.start:]
        self.start = keep
        return frames


def load_live(checkpoint: str | Path, device: str = "auto"):
    """``load_talker``'s (model, a2e, extra) of a checkpoint folder, refusing in one line what cannot run live."""
    from talklib.nerf.talk import load_talker
    from talklib.runtime import pick_device

    p = Path(checkpoint)
    if p.is_file() and p.suffix == ".pt" and p.name != "nerf.pt":
        raise UserError(f"{p} is a file, not a per-speaker NeRF checkpoint folder: live streams a NeRF that "
                        "`python -m talklib train` or the notebooks saved (RUN/checkpoints/NAME); S3D-NeRF's single "
                        "shot (RUN/models/s3d_nerf.pt) is not streamed live")
    if not (p / "nerf.pt").is_file() and not (p.name == "nerf.pt" and p.is_file()):
        raise UserError(f"no NeRF checkpoint at {p} (no nerf.pt): give a folder `python -m talklib train` wrote, "
                        "e.g. runs/small/checkpoints/nerf03")
    try:
        dev = pick_device(device)
    except ValueError as e:
        raise UserError(str(e)) from None
    return load_talker(p if p.is_dir() else p.parent, dev)
