"""Audio features aligned to the video: exactly one row per video frame, for any duration.

Time convention (used by every feature here): video frame ``i`` at ``fps`` (25) covers
``[i / fps, (i + 1) / fps)`` seconds, i.e. 640 samples at 16 kHz. A clip of ``N`` video frames uses
the first ``N * 640`` samples (zero-padded when the audio is shorter). Native feature frames (mel at
62.5 Hz, MFCC / F0 at 100 Hz) are resampled to a **50 Hz** stream — two steps per video frame, the
DeepSpeech rate AD-NeRF uses — whose frame ``j`` is centred at ``(j + 0.5) / 50`` s. From that stream:

- per-frame rows (N, C): the mean of the two 50 Hz steps inside the video frame;
- AD-NeRF-style windows (N, 16, C): 16 steps of the 50 Hz stream centred on the video frame
  (steps ``2i-7 .. 2i+8``), edges repeated. This is what AD-NeRF's ``aud.npy`` [N, 16, 29] is.

Kinds (``aud_<kind>.npy`` in a clip folder, see :data:`FEATURE_DOCS`):

- ``mel`` (N, 80): SpeechSplit's log-mel: 30 Hz high-pass, STFT 1024 / hop 256, 80 mels over
  90–7600 Hz, scaled ``(dB - 16 + 100) / 100`` and clipped to [0, 1];
- ``mfcc`` (N, 13): 25 ms / 10 ms MFCC over 40 mels;
- ``f0`` (N,): F0 in Hz by RAPT (0 = unvoiced); ``f0q`` (N,) int: speaker-normalised log-F0 quantised
  to 256 bins, 1..256, with 0 = unvoiced (SpeechSplit's 257-way code);
- ``energy`` (N,): RMS energy in dB over the video frame;
- ``mel_win`` (N, 16, 80), ``mfcc_win`` (N, 16, 13): the sliding windows.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from talklib.audio.io import SAMPLE_RATE
from talklib.errors import UserError

FPS = 25
STREAM_HZ = 50  # the intermediate stream: 2 steps per video frame
WINDOW = 16  # AD-NeRF: 16 stream steps per video frame
MEL_HOP = 256
MEL_NFFT = 1024
N_MELS = 80
F0_BINS = 256  # + 1 unvoiced bin
DEFAULT_F0_RANGE = (60.0, 400.0)

FEATURE_DOCS = {
    "mel": ("(N, 80)", "float32", "SpeechSplit log-mel, (dB-16+100)/100 in [0,1], mean over each video frame"),
    "mfcc": ("(N, 13)", "float32", "MFCC (25 ms window, 10 ms hop, 40 mels), mean over each video frame"),
    "f0": ("(N,)", "float32", "F0 in Hz by RAPT, 0 = unvoiced"),
    "f0q": ("(N,)", "int16", "speaker-normalised log-F0 quantised to 1..256, 0 = unvoiced (SpeechSplit)"),
    "energy": ("(N,)", "float32", "RMS energy in dB (re full scale) over each video frame"),
    "mel_win": ("(N, 16, 80)", "float32", "AD-NeRF-style window: 16 steps of the 50 Hz mel stream centred on frame i"),
    "mfcc_win": ("(N, 16, 13)", "float32", "AD-NeRF-style window: 16 steps of the 50 Hz MFCC stream centred on frame i"),
    "phon_win": ("(N, 16, C)", "float32", "phoneme posteriors of talklib.audio.recognizer at 50 Hz, windowed (DeepSpeech-like)"),
    "ssplit": ("(N, D)", "float32", "SpeechSplit codes [content | rhythm | pitch] per video frame"),
    "sync": ("(N, D)", "float32", "contrastive audio embedding f_a per video frame (DFA-NeRF Eq. 3)"),
}


# ------------------------------------------------------------------------------------------------
# frame counts and the 50 Hz stream
def n_video_frames(num_samples: int, fps: int = FPS, sr: int = SAMPLE_RATE) -> int:
    """Number of video frames a signal of ``num_samples`` covers (rounded; refuses < 1 frame)."""
    spf = sr / fps
    if num_samples < spf:
        raise UserError(
            f"audio is {1000.0 * num_samples / sr:.1f} ms long, shorter than one video frame "
            f"({1000.0 / fps:.0f} ms): give a longer recording or pass n_frames to pad it"
        )
    return int(np.floor(num_samples / spf + 0.5))


def fit_length(audio: np.ndarray, n_frames: int, fps: int = FPS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Crop or zero-pad mono audio (T,) to exactly ``n_frames`` video frames of samples."""
    if n_frames < 1:
        raise UserError(f"n_frames={n_frames}: a clip needs at least one video frame")
    n = int(round(n_frames * sr / fps))
    audio = np.asarray(audio, dtype=np.float32)
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


def stream_times(n_frames: int, fps: int = FPS) -> np.ndarray:
    """Centres (s) of the 50 Hz stream steps of a clip of n_frames video frames: (2N,)."""
    per = STREAM_HZ // fps
    return (np.arange(n_frames * per) + 0.5) / (fps * per)


def to_stream(values: np.ndarray, times: np.ndarray, n_frames: int, fps: int = FPS) -> np.ndarray:
    """Linear interpolation of native frames values (M, C) at times (M,) onto the 50 Hz stream (2N, C)."""
    values = np.asarray(values, dtype=np.float64)
    squeeze = values.ndim == 1
    if squeeze:
        values = values[:, None]
    dst = stream_times(n_frames, fps)
    out = np.stack([np.interp(dst, times, values[:, c]) for c in range(values.shape[1])], axis=1)
    return (out[:, 0] if squeeze else out).astype(np.float32)


def per_frame(stream: np.ndarray, fps: int = FPS) -> np.ndarray:
    """Mean of the stream steps inside each video frame: (2N, ...) -> (N, ...)."""
    per = STREAM_HZ // fps
    n = stream.shape[0] // per
    return stream[: n * per].reshape(n, per, *stream.shape[1:]).mean(axis=1).astype(np.float32)


def windows(stream: np.ndarray, win: int = WINDOW, fps: int = FPS) -> np.ndarray:
    """AD-NeRF sliding windows: stream (2N, C) -> (N, win, C), window i centred on video frame i.

    Window i holds steps ``2i+1-win/2 .. 2i+win/2`` (edges repeated), like AD-NeRF's ``aud.npy``.
    """
    per = STREAM_HZ // fps
    n = stream.shape[0] // per
    centre = np.arange(n) * per + per // 2  # first step right of the frame centre
    idx = centre[:, None] + np.arange(-(win // 2), win - win // 2)[None, :]
    idx = np.clip(idx, 0, stream.shape[0] - 1)
    return np.ascontiguousarray(stream[idx]).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# SpeechSplit mel (at its native 62.5 Hz)
def highpass(audio: np.ndarray, cutoff: float = 30.0, sr: int = SAMPLE_RATE, order: int = 5) -> np.ndarray:
    """Zero-phase Butterworth high-pass (SpeechSplit: 30 Hz, order 5, filtfilt)."""
    from scipy.signal import butter, sosfiltfilt

    audio = np.asarray(audio, dtype=np.float64)
    sos = butter(order, cutoff / (0.5 * sr), btype="high", output="sos")
    if len(audio) <= 3 * (2 * len(sos) + 1):
        return audio.astype(np.float32)
    return sosfiltfilt(sos, audio).astype(np.float32)


def mel_basis(sr: int = SAMPLE_RATE) -> np.ndarray:
    """The (80, 513) mel filterbank over 90–7600 Hz (librosa, Slaney)."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=MEL_NFFT, fmin=90, fmax=7600, n_mels=N_MELS).astype(np.float32)


def speechsplit_mel(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """SpeechSplit's spectrogram of 16 kHz mono audio (T,): (M, 80) in [0, 1], M = T // 256 + 1.

    Frame m is centred at ``m * 256 / 16000`` s (reflect-padded STFT, Hann window of 1024).
    ``S = clip((20 log10(max(1e-5, mel)) - 16 + 100) / 100, 0, 1)``; silence gives 0.
    """
    import librosa

    x = highpass(audio, 30.0, sr)
    if len(x) < MEL_NFFT:  # short clips: zero-pad to one FFT window (frames past the end are cut below)
        x = np.pad(x, (0, MEL_NFFT - len(x)))
    spec = np.abs(librosa.stft(x, n_fft=MEL_NFFT, hop_length=MEL_HOP, window="hann", center=True, pad_mode="reflect"))
    mel = mel_basis(sr) @ spec
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - 16.0
    out = np.clip((db + 100.0) / 100.0, 0.0, 1.0).T
    m = len(audio) // MEL_HOP + 1
    return np.ascontiguousarray(out[:m]).astype(np.float32)


def mel_times(m: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    return np.arange(m) * MEL_HOP / sr


# ------------------------------------------------------------------------------------------------
# MFCC and energy
def mfcc_native(audio: np.ndarray, sr: int = SAMPLE_RATE, n_mfcc: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """MFCC (M, 13) at 100 Hz (25 ms window) and the frame centres (M,) in seconds."""
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    if len(x) < 201:
        x = np.pad(x, (0, 201 - len(x)))
    m = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=n_mfcc, n_fft=400, hop_length=160, n_mels=40, fmin=20, fmax=sr / 2)
    return m.T.astype(np.float32), np.arange(m.shape[1]) * 160 / sr


def energy_db(audio: np.ndarray, n_frames: int, fps: int = FPS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RMS energy (dB re full scale, floor -100) of each video frame: (N,)."""
    x = fit_length(audio, n_frames, fps, sr)
    frames = x.reshape(n_frames, -1).astype(np.float64)
    return (10.0 * np.log10(np.maximum(np.mean(frames ** 2, axis=1), 1e-10))).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# F0
def f0_rapt(audio: np.ndarray, sr: int = SAMPLE_RATE, hop: int = 160,
            f0_range: tuple[float, float] = DEFAULT_F0_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz by RAPT (pysptk), 0 where unvoiced: (M,), and the frame times (M,) in seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pysptk
    lo, hi = float(f0_range[0]), float(f0_range[1])
    if not (10.0 < lo < hi < sr / 2):
        raise UserError(f"F0 range {f0_range} is not a valid (min, max) in Hz: use e.g. (60, 400)")
    x = np.asarray(audio, dtype=np.float64)
    m = len(x) // hop + 1
    need = max(len(x), int(0.25 * sr))  # RAPT needs a few pitch periods of context
    xp = np.pad(x, (0, need - len(x))) * 32767.0
    if not np.any(np.abs(xp) > 1.0):  # digital silence: nothing is voiced
        return np.zeros(m, np.float32), np.arange(m) * hop / sr
    f0 = pysptk.rapt(xp.astype(np.float32), fs=sr, hopsize=hop, min=lo, max=hi, otype="f0")
    f0 = np.asarray(f0, dtype=np.float32)
    f0 = f0[:m] if len(f0) >= m else np.pad(f0, (0, m - len(f0)))
    return clean_f0(f0, min_run=max(2, int(round(0.03 * sr / hop))), median=max(3, int(round(0.05 * sr / hop)) | 1)), \
        np.arange(m) * hop / sr


def clean_f0(f0: np.ndarray, min_run: int = 3, median: int = 5) -> np.ndarray:
    """Remove tracker glitches: voiced runs shorter than ``min_run`` frames become unvoiced, and each
    voiced run is median-filtered (``median`` frames, odd) in log-F0, which removes octave jumps at
    voicing edges. f0: (M,) Hz, 0 = unvoiced."""
    from scipy.signal import medfilt

    out = np.asarray(f0, np.float32).copy()
    voiced = out > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < min_run:
            out[a:b] = 0.0
        elif b - a >= 3:
            k = min(median, (b - a) if (b - a) % 2 else (b - a) - 1)  # odd, at most the run length
            seg = np.log(out[a:b].astype(np.float64))
            padded = np.pad(seg, k // 2, mode="edge")
            out[a:b] = np.exp(medfilt(padded, k)[k // 2: k // 2 + (b - a)]).astype(np.float32)
    return out


def f0_to_stream(f0: np.ndarray, times: np.ndarray, n_frames: int, fps: int = FPS) -> np.ndarray:
    """Resample an F0 track (0 = unvoiced) onto the 50 Hz stream: voiced where most of it is voiced,
    log-F0 interpolated across voiced frames only. Returns (2N,) Hz, 0 = unvoiced."""
    return f0_resample(f0, times, stream_times(n_frames, fps))


def f0_resample(f0: np.ndarray, times: np.ndarray, dst_times: np.ndarray) -> np.ndarray:
    """F0 track (M,) Hz at ``times`` -> (len(dst_times),) Hz: voiced where the interpolated voicing is
    >= 0.5, log-F0 interpolated across voiced frames only; 0 = unvoiced."""
    voiced = (f0 > 0).astype(np.float64)
    v = np.interp(dst_times, times, voiced) >= 0.5
    if not voiced.any():
        return np.zeros(len(dst_times), np.float32)
    lf_s = np.interp(dst_times, times[f0 > 0], np.log(f0[f0 > 0]))
    return np.where(v, np.exp(lf_s), 0.0).astype(np.float32)


def f0_stats(f0: np.ndarray) -> tuple[float, float]:
    """Speaker statistics: mean and std of log-F0 over voiced frames (defaults when too few)."""
    lf = np.log(f0[f0 > 0])
    if len(lf) < 2:
        return float(np.log(150.0)), 0.25
    return float(lf.mean()), float(max(lf.std(), 1e-3))


def normalise_f0(f0: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """SpeechSplit's speaker normalisation: ((log f0 - mean) / std / 4) clipped to [-1, 1], mapped to
    [0, 1]; unvoiced frames -> -1."""
    mean, std = stats
    out = np.full(f0.shape, -1.0, np.float32)
    v = f0 > 0
    z = np.clip((np.log(f0[v]) - mean) / std / 4.0, -1.0, 1.0)
    out[v] = (z + 1.0) / 2.0
    return out


def quantise_f0(f0_norm: np.ndarray, bins: int = F0_BINS) -> np.ndarray:
    """Normalised F0 in [0, 1] (-1 unvoiced) -> int bins 1..256, 0 = unvoiced (SpeechSplit)."""
    q = np.round(np.clip(f0_norm, 0.0, 1.0) * (bins - 1)).astype(np.int16) + 1
    q[f0_norm < 0] = 0
    return q


def f0_onehot(f0q: np.ndarray, bins: int = F0_BINS) -> np.ndarray:
    """(M,) bins -> (M, 257) one-hot, float32."""
    out = np.zeros((len(f0q), bins + 1), np.float32)
    out[np.arange(len(f0q)), f0q.astype(np.int64)] = 1.0
    return out


# ------------------------------------------------------------------------------------------------
# all features of one clip
def compute_features(audio: np.ndarray, n_frames: int | None = None, fps: int = FPS,
                     f0_range: tuple[float, float] = DEFAULT_F0_RANGE,
                     speaker_f0_stats: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Every frame-aligned feature of 16 kHz mono audio (T,), keyed by kind (see FEATURE_DOCS).

    n_frames: video frames of the clip (default: the audio's length at ``fps``, rounded; audio
    shorter than one frame is refused). The audio is cropped / zero-padded to exactly that length.
    speaker_f0_stats: (mean, std) of the speaker's log-F0 (default: this clip's).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise UserError(f"audio has shape {audio.shape}: load it with talklib.audio.io.load_audio first")
    if not np.all(np.isfinite(audio)):
        raise UserError("audio has NaN or infinite samples: load it with talklib.audio.io.load_audio first")
    if n_frames is None:
        n_frames = n_video_frames(len(audio), fps)
    x = fit_length(audio, n_frames, fps)

    mel = speechsplit_mel(x)
    mel_s = to_stream(mel, mel_times(len(mel)), n_frames, fps)
    mf, mf_t = mfcc_native(x)
    mf_s = to_stream(mf, mf_t, n_frames, fps)
    f0, f0_t = f0_rapt(x, f0_range=f0_range)
    f0_s = f0_to_stream(f0, f0_t, n_frames, fps)
    # per video frame: voiced if either half is voiced, F0 = geometric mean of the voiced halves
    halves = f0_s.reshape(n_frames, -1)
    nv = (halves > 0).sum(axis=1)
    logsum = np.where(halves > 0, np.log(np.where(halves > 0, halves, 1.0)), 0.0).sum(axis=1)
    f0_frame = np.where(nv > 0, np.exp(logsum / np.maximum(nv, 1)), 0.0).astype(np.float32)
    stats = speaker_f0_stats if speaker_f0_stats is not None else f0_stats(f0)
    return {
        "mel": per_frame(mel_s, fps),
        "mfcc": per_frame(mf_s, fps),
        "f0": f0_frame,
        "f0q": quantise_f0(normalise_f0(f0_frame, stats)),
        "energy": energy_db(x, n_frames, fps),
        "mel_win": windows(mel_s, WINDOW, fps),
        "mfcc_win": windows(mf_s, WINDOW, fps),
    }


def mel_stream(audio: np.ndarray, n_frames: int, fps: int = FPS) -> np.ndarray:
    """The 50 Hz SpeechSplit-mel stream (2N, 80) of a clip (input of the recognizer and sync encoder)."""
    x = fit_length(np.asarray(audio, np.float32), n_frames, fps)
    mel = speechsplit_mel(x)
    return to_stream(mel, mel_times(len(mel)), n_frames, fps)


# ------------------------------------------------------------------------------------------------
# writing into a clip folder
def write_features(clip_dir: str | Path, feats: dict[str, np.ndarray], docs: dict | None = None) -> list[Path]:
    """Write each feature as ``aud_<kind>.npy`` into ``clip_dir`` and describe it in ``dataset.json``.

    ``dataset.json`` gets (or updates) one entry per file under its ``files`` mapping:
    ``{"aud_mel.npy": {"shape": [N, 80], "dtype": "float32", "description": ...}}``. Other keys of
    dataset.json are left as they are. Files are written atomically.
    """
    import io as _io

    from talklib.outputs import atomic_write_bytes, atomic_write_text

    clip_dir = Path(clip_dir)
    if not clip_dir.is_dir():
        raise UserError(f"clip folder {clip_dir} does not exist: build the dataset first (notebook 01)")
    docs = {**FEATURE_DOCS, **(docs or {})}
    written, entries = [], {}
    for kind, arr in feats.items():
        arr = np.asarray(arr)
        buf = _io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        name = f"aud_{kind}.npy"
        written.append(atomic_write_bytes(clip_dir / name, buf.getvalue()))
        entries[name] = {
            "shape": list(arr.shape), "dtype": str(arr.dtype),
            "description": docs.get(kind, ("", "", f"audio feature {kind}"))[2],
            "rate": f"{FPS} rows per second (one per video frame)",
        }
    meta_path = clip_dir / "dataset.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    files = meta.setdefault("files", {})
    if isinstance(files, dict):
        files.update(entries)
    else:  # a list of file records
        names = {f.get("name", f.get("path")): i for i, f in enumerate(files) if isinstance(f, dict)}
        for name, e in entries.items():
            rec = {"name": name, **e}
            if name in names:
                files[names[name]] = rec
            else:
                files.append(rec)
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return written


def read_feature(clip_dir: str | Path, kind: str) -> np.ndarray:
    """Load ``aud_<kind>.npy`` from a clip folder (UserError when it was never computed)."""
    path = Path(clip_dir) / f"aud_{kind}.npy"
    if not path.exists():
        raise UserError(f"{path} is missing: compute audio features first (notebook 02 or talklib.audio.features)")
    return np.load(path, allow_pickle=False)
