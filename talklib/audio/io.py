"""Loading and saving audio: anything common in, 16 kHz mono float32 out.

Every audio path in talklib goes through :func:`load_audio`, so that features, SpeechSplit and the
NeRFs all see the same signal: 16 kHz (SpeechSplit's and DeepSpeech's rate), one channel, float32
samples in about [-1, 1]. Files are read with libsndfile (wav, flac, ogg/vorbis/opus, mp3, aiff, ...;
8/16/24/32-bit integer and float) and, failing that, decoded by the ffmpeg binary that ships with
``imageio-ffmpeg`` (m4a/aac, the audio track of a video, ...). Bad input is refused where it enters,
with a one-line :class:`~talklib.errors.UserError`:

- a missing file, a folder, or a file that is not audio;
- an empty signal (zero samples);
- NaN or infinite samples.

Digital silence is valid audio and is returned as zeros (features handle it).
"""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from talklib.errors import UserError

SAMPLE_RATE = 16000
"""The one sample rate talklib works at (Hz)."""


def load_audio(path_or_array, sr: int | None = None) -> np.ndarray:
    """Load audio as 16 kHz mono float32, shape (T,).

    path_or_array: a file path (str or Path) or an array of samples: (T,), (T, C) or (C, T) with at
    most 16 channels; integer arrays are scaled to [-1, 1) (uint8 is 8-bit offset binary, as in WAV).
    sr: the sample rate of an *array* input (default 16000). For a file the rate in its header is
    used; passing ``sr`` with a file is refused unless it matches the header.
    Channels are averaged; the rate is converted with a polyphase filter (``scipy.signal.resample_poly``).
    """
    if isinstance(path_or_array, (str, Path)):
        samples, file_sr = _read_file(Path(path_or_array))
        if sr is not None and int(sr) != file_sr:
            raise UserError(
                f"sr={sr} given for {path_or_array} whose header says {file_sr} Hz: "
                "leave sr out for files (it is only for arrays)"
            )
        rate, what = file_sr, str(path_or_array)
    else:
        samples = _as_float(np.asarray(path_or_array))
        rate, what = (SAMPLE_RATE if sr is None else int(sr)), "the audio array"
        if rate <= 0:
            raise UserError(f"sample rate {sr} is not positive: pass the rate of the array in Hz")
    mono = _to_mono(samples, what)
    if mono.size == 0:
        raise UserError(f"{what} holds no samples: give a recording at least 40 ms (one video frame) long")
    if not np.all(np.isfinite(mono)):
        bad = int(np.size(mono) - np.count_nonzero(np.isfinite(mono)))
        raise UserError(f"{what} has {bad} NaN or infinite samples: re-export it or replace them with zeros")
    return resample(mono, rate, SAMPLE_RATE)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Rate conversion of a mono signal x: (T,) -> (round(T * sr_out / sr_in),), float32."""
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return np.ascontiguousarray(x)
    from scipy.signal import resample_poly

    frac = Fraction(int(sr_out), int(sr_in)).limit_denominator(1000)
    y = resample_poly(x.astype(np.float64), frac.numerator, frac.denominator)
    n_out = int(round(len(x) * sr_out / sr_in))
    y = y[:n_out] if len(y) >= n_out else np.pad(y, (0, n_out - len(y)))
    return y.astype(np.float32)


def save_wav(path: str | Path, audio: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """Write mono float audio (T,) as 16-bit PCM WAV, atomically (temp file, then rename)."""
    import soundfile as sf

    from talklib.outputs import atomic_write_bytes

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), int(sr), subtype="PCM_16", format="WAV")
    return atomic_write_bytes(path, buf.getvalue())


def duration_s(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Length of a mono signal in seconds."""
    return len(audio) / float(sr)


# ------------------------------------------------------------------------------------------------
def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise UserError(f"audio file {path} does not exist: check the path")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an audio file: give the path of a .wav/.flac/.ogg/.mp3 file")
    if path.stat().st_size == 0:
        raise UserError(f"audio file {path} is empty (0 bytes): re-export it")
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except Exception:  # libsndfile cannot read it: try ffmpeg (m4a, aac, video containers, ...)
        pass
    return _read_with_ffmpeg(path)


def _read_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        exe = None
    if exe is not None:
        cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-f", "f32le",
               "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is not None and proc.returncode == 0 and len(proc.stdout) >= 4:
            data = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4").copy()
            return data[:, None], SAMPLE_RATE
    raise UserError(
        f"{path} is not an audio file talklib can read: give wav, flac, ogg, mp3 (or any file with an audio track ffmpeg decodes)"
    )


def _as_float(a: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1); floats pass through as float32."""
    if a.dtype == np.uint8:
        return (a.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(a.dtype, np.signedinteger):
        return a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))
    if np.issubdtype(a.dtype, np.unsignedinteger):
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        return (a.astype(np.float64) - half).astype(np.float32) / half
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    if a.dtype == bool:
        raise UserError("the audio array is boolean: pass samples as floats in [-1, 1] or integer PCM")
    raise UserError(f"the audio array has dtype {a.dtype}: pass samples as floats in [-1, 1] or integer PCM")


def _to_mono(a: np.ndarray, what: str) -> np.ndarray:
    if a.ndim == 1:
        return a.astype(np.float32)
    if a.ndim == 2:
        if a.shape[1] <= 16 and (a.shape[1] <= a.shape[0] or a.shape[0] > 16):
            return a.mean(axis=1).astype(np.float32)  # (T, C)
        if a.shape[0] <= 16:
            return a.mean(axis=0).astype(np.float32)  # (C, T)
    raise UserError(
        f"{what} has shape {tuple(a.shape)}: pass mono (T,) or multichannel (T, C) / (C, T) samples"
    )
