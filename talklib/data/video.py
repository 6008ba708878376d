"""Reading and writing videos: an mp4 file or a folder of frame images, with optional sound.

- ``read_video(path)`` -> ``(frames, fps)``: frames ``(N, H, W, 3)`` uint8 RGB, fps a float. ``path`` is an
  mp4 (any container ffmpeg reads) or a folder of ``.png``/``.jpg`` images, read in natural order
  (``2.png`` before ``10.png``); a folder has no frame rate of its own, so it gets ``folder_fps``.
- ``read_video_audio(path)`` -> the sound track of a video file as float32 mono at ``sample_rate``
  (``None`` when it has none).
- ``write_video(path, frames, fps, audio, sample_rate)`` writes an H.264 mp4 (yuv420p, plays in browsers)
  with the audio muxed in as AAC, through a temporary name in the same folder that is renamed at the end,
  so a half-written file never looks complete. ``frames`` is an array, or an iterable of frames or
  batches that is streamed to the encoder as it comes (memory stays flat however long the video).

The ffmpeg binary is the one inside the ``imageio-ffmpeg`` wheel (no system ffmpeg needed).
Bad input raises ``UserError`` with a one-line message.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from talklib.errors import UserError
from talklib.outputs import publish, remove_stale, temp_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def list_frame_images(folder: str | Path) -> list[Path]:
    """The image files of a frames folder in natural order (``1.png, 2.png, ..., 10.png``)."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=_natural_key)


def read_video(path: str | Path, folder_fps: float = 25.0) -> tuple[np.ndarray, float]:
    """Read an mp4 (or other ffmpeg-readable video) or a folder of images.

    Returns ``frames`` (N, H, W, 3) uint8 RGB and ``fps`` (from the file; ``folder_fps`` for a folder).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"video {path} does not exist: give an mp4 file or a folder of frame images")
    if path.is_dir():
        return _read_folder(path), float(folder_fps)
    return _read_file(path)


def _read_folder(folder: Path) -> np.ndarray:
    from PIL import Image

    files = list_frame_images(folder)
    if not files:
        raise UserError(f"folder {folder} holds no frame images (.png/.jpg): give a folder of frames or an mp4")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise UserError(f"frame {f} cannot be read as an image ({e}): replace or remove it") from None
        if frames and arr.shape != frames[0].shape:
            raise UserError(f"frame {f.name} is {arr.shape[1]}x{arr.shape[0]} but {files[0].name} is "
                            f"{frames[0].shape[1]}x{frames[0].shape[0]}: all frames of a folder must have one size")
        frames.append(arr)
    return np.stack(frames)


def _read_file(path: Path) -> tuple[np.ndarray, float]:
    import imageio_ffmpeg

    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        w, h = meta["size"]
        fps = float(meta.get("fps") or 25.0)
        frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in gen]
    except (RuntimeError, OSError, StopIteration, KeyError) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise UserError(f"video {path} cannot be read by ffmpeg ({msg}): give an mp4 or a folder of frames") from None
    if not frames:
        raise UserError(f"video {path} has no frames: give a video with at least one frame")
    return np.stack(frames), fps


def read_video_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray | None:
    """The sound track of a video file as float32 mono samples at ``sample_rate``; None if it has none
    (or ``path`` is a frames folder)."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.exists():
        raise UserError(f"video {path} does not exist: give an mp4 file or a folder of frame images")
    if path.is_dir():
        return None
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1",
           "-ar", str(int(sample_rate)), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or len(proc.stdout) == 0:
        return None
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) / 32768.0


def _as_uint8_frames(frames) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim == 3:  # grey frames (N, H, W)
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4) or arr.shape[0] == 0:
        raise UserError(f"frames have shape {arr.shape}: give an array (N, H, W, 3) with N >= 1")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise UserError("frames hold NaN or inf: give finite values in [0, 1]")
        return np.ascontiguousarray((np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    if np.issubdtype(arr.dtype, np.integer):
        return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))
    raise UserError(f"frames have dtype {arr.dtype}: give uint8 in [0, 255] or floats in [0, 1]")


def _frame_batches(frames):
    """(n, H, W, 3) uint8 batches of ``frames``: one for an array (or list), else one per item of the
    iterable (an item is a frame (H, W, 3) or a batch (b, H, W, 3)), all of one size."""
    if isinstance(frames, (np.ndarray, list, tuple)) or hasattr(frames, "__array__"):
        yield _as_uint8_frames(frames)
        return
    shape = None
    for item in frames:
        item = np.asarray(item)
        batch = _as_uint8_frames(item[None] if item.ndim == 3 else item)
        if shape is not None and batch.shape[1:] != shape:
            raise UserError(f"frames change size from {shape[1]}x{shape[0]} to {batch.shape[2]}x{batch.shape[1]}: "
                            "every frame of a video must have one size")
        shape = batch.shape[1:]
        yield batch
        item = batch = None     # hold nothing while the next one is made


def write_video(path: str | Path, frames, fps: float = 25.0, audio=None, sample_rate: int = 16000,
                quality: int = 8) -> Path:
    """Write ``frames`` (N, H, W, 3) (uint8, or floats in [0, 1]) as an H.264 mp4 at ``fps``.

    ``frames`` may also be an iterable (a generator) of frames (H, W, 3) or batches (b, H, W, 3): each is
    sent to the encoder as it comes, so only one batch is in memory at a time.
    ``audio``: None, a 1-D float array of samples at ``sample_rate`` (or (T, C)), or a path to a sound
    file; it is muxed as AAC. Odd frame sizes are padded by one edge row/column (yuv420p needs even
    sizes). The file is written to a temporary name in the target folder (``.NAME.tmp-PID-*``) and
    renamed when complete. Returns ``path``.
    """
    import imageio_ffmpeg

    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise UserError(f"video path {path} does not end in .mp4: write_video writes mp4 files")
    if not (fps > 0) or not np.isfinite(fps):
        raise UserError(f"fps {fps} is not a positive number: give a frame rate such as 25")
    batches = _frame_batches(frames)
    first = next(batches, None)
    if first is None:
        raise UserError("no frames to write: give at least one frame (N, H, W, 3)")
    h, w = first.shape[1:3]
    ph, pw = h % 2, w % 2
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temp_file(path, ".mp4")
    wav_tmp = writer = None
    try:
        audio_path = None
        if audio is not None:
            audio_path, wav_tmp = _audio_to_file(audio, sample_rate, path)
        writer = imageio_ffmpeg.write_frames(
            tmp, (w + pw, h + ph), fps=float(fps), quality=quality, macro_block_size=1,
            audio_path=audio_path, audio_codec="aac" if audio_path else None,
            output_params=["-movflags", "+faststart"],
            ffmpeg_log_level="error")
        writer.send(None)
        batch, first = first, None
        while batch is not None:
            if ph or pw:
                batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
            for frame in batch:
                writer.send(frame)
            frame = batch = None    # hold nothing while the next batch is made
            batch = next(batches, None)
        writer.close()
        writer = None
        publish(tmp, path)
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the encoder's own failure is not the error to report
                pass
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if wav_tmp is not None:
            Path(wav_tmp).unlink(missing_ok=True)
    return path


def _audio_to_file(audio, sample_rate: int, video: Path) -> tuple[str, str | None]:
    """A sound file ffmpeg can read: the given path, or a temporary wav (``.NAME.tmp-PID-*.wav`` next to
    the ``video`` it is for) written from samples."""
    import soundfile as sf

    if isinstance(audio, (str, Path)):
        if not Path(audio).is_file():
            raise UserError(f"audio {audio} does not exist: give a wav file or an array of samples")
        return str(audio), None
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise UserError(f"audio has shape {samples.shape}: give samples (T,) or (T, channels)")
    if not np.all(np.isfinite(samples)):
        raise UserError("audio holds NaN or inf: give finite samples in [-1, 1]")
    if int(sample_rate) <= 0:
        raise UserError(f"sample_rate {sample_rate} is not positive: give e.g. 16000")
    wav = temp_file(video, ".wav")
    sf.write(wav, np.clip(samples, -1.0, 1.0), int(sample_rate), subtype="PCM_16")
    return wav, wav
