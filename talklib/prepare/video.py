"""Any talking-face video in, 25 fps RGB frames out (streamed), and the phone-style test videos.

``open_video(path)`` probes the file with ffmpeg (the binary inside the ``imageio-ffmpeg`` wheel) and
returns a ``Source``: its size after rotation, frame rate, duration and whether it has sound.
``frames_25(source)`` decodes it at exactly 25 frames per second, as a stream: ffmpeg's ``fps`` filter
picks, for every 40 ms tick, the frame shown at that time, so a 30 fps, 60 fps or variable-frame-rate
phone video becomes the 25 fps timeline the datasets use (frame i covers audio [i/25, (i+1)/25) s).
Phone rotation metadata is applied by ffmpeg (portrait stays portrait). The sound is read by
``talklib.data.video.read_video_audio``.

``phone_style(frames, audio, out)`` is the other direction, for tests and benchmarks: it turns a
synthetic clip into what a phone would give (another frame rate, portrait 720x1280 with the square
picture letterboxed, lossy H.264 + AAC), so that ``prepare`` can be checked against ground truth.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talklib.errors import UserError

FPS = 25
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")


@dataclass(frozen=True)
class Source:
    """A video file as ffmpeg sees it: ``width`` x ``height`` after rotation, ``fps`` (average), ``seconds``."""
    path: Path
    width: int
    height: int
    fps: float
    seconds: float
    has_audio: bool


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def open_video(path: str | Path) -> Source:
    """Probe ``path``; ``UserError`` when it is missing, not a video, or ffmpeg cannot read it."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"video {p} does not exist: give a video file (mp4, mov, webm, mkv)")
    if p.is_dir():
        raise UserError(f"{p} is a folder: give a video file (mp4, mov, webm, mkv)")
    proc = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(p)], capture_output=True, text=True,
                          errors="replace")
    info = proc.stderr
    m = re.search(r"Stream #\S+.*?: Video: .*?(\d{2,5})x(\d{2,5})", info)
    if m is None:
        last = info.strip().splitlines()[-1] if info.strip() else "no output"
        raise UserError(f"{p} has no video stream ffmpeg can read ({last}): give a video file (mp4, mov, webm, "
                        "mkv); a file cut short while copying cannot be read either")
    w, h = int(m[1]), int(m[2])
    rot = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees|rotate\s*:\s*(-?\d+)", info)
    if rot is not None and abs(round(float(rot[1] or rot[2]))) % 180 == 90:
        w, h = h, w
    fr = re.search(r"Video: .*?, (\d+(?:\.\d+)?) fps", info) or re.search(r"Video: .*?, (\d+(?:\.\d+)?) tbr", info)
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", info)
    seconds = (int(dur[1]) * 3600 + int(dur[2]) * 60 + float(dur[3])) if dur else 0.0
    has_audio = re.search(r"Stream #\S+.*?: Audio: ", info) is not None
    return Source(p, w, h, float(fr[1]) if fr else 0.0, seconds, has_audio)


def frames_25(source: Source, batch: int = 8, ahead: int = 3):
    """Yield (b, H, W, 3) uint8 RGB batches of the video resampled to 25 fps, in order.

    A thread reads ffmpeg's output up to ``ahead`` batches ahead of the consumer: a pipe holds only 64 KiB,
    so without it ffmpeg would stop decoding whenever the consumer works (tracking, cropping), and the two
    would take turns on the CPU instead of sharing it. A file that breaks off part-way (a truncated
    download) yields what decodes; one that yields nothing raises ``UserError``. Stopping early (``break``,
    an error in the consumer) stops ffmpeg.
    """
    import queue
    import tempfile
    import threading

    w, h = source.width, source.height
    cmd = [_ffmpeg(), "-v", "error", "-i", str(source.path), "-map", "0:v:0", "-vf", f"fps={FPS}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    errors = tempfile.TemporaryFile()     # not a pipe: a damaged file's many messages cannot stall ffmpeg
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
    try:                                   # a 1 MiB pipe instead of 64 KiB: fewer wake-ups per frame (Linux)
        import fcntl

        fcntl.fcntl(proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass
    size = w * h * 3
    batches: queue.Queue = queue.Queue(maxsize=max(1, int(ahead)))
    stop = threading.Event()
    END = object()

    def read() -> None:
        try:
            while not stop.is_set():
                buf = proc.stdout.read(size * batch)
                n = len(buf) // size
                if n:
                    batches.put(np.frombuffer(buf[: n * size], np.uint8).reshape(n, h, w, 3))
                if len(buf) < size * batch:
                    break
        except BaseException as e:       # handed to the consumer, raised there
            batches.put(e)
        finally:
            batches.put(END)

    reader = threading.Thread(target=read, name="frames_25", daemon=True)
    reader.start()
    got = 0
    try:
        while True:
            item = batches.get()
            if item is END:
                break
            if isinstance(item, BaseException):
                raise item
            got += len(item)
            yield item
    finally:
        stop.set()
        if reader.is_alive():            # the consumer stopped early: end ffmpeg, let the reader finish
            proc.kill()
            while reader.is_alive():
                try:
                    batches.get(timeout=0.1)
                except queue.Empty:
                    pass
        reader.join()
        proc.stdout.close()
        proc.wait()
        errors.seek(0)
        err = errors.read().decode(errors="replace")
        errors.close()
    if got == 0:
        last = err.strip().splitlines()[-1] if err.strip() else "no frames"
        raise UserError(f"no frame of {source.path} could be decoded ({last}): the file is damaged or truncated; "
                        "give the complete video")


def phone_style(frames: np.ndarray, audio: np.ndarray | None, out: str | Path, fps: float = 30.0,
                width: int = 720, height: int = 1280, crf: int = 28, sample_rate: int = 16000) -> Path:
    """Write 25 fps ``frames`` (T, S, S, 3) uint8 as a phone-style video: ``fps`` frames per second (frames
    repeated or skipped by ffmpeg at their times), the square picture scaled to ``width`` and letterboxed
    into ``width`` x ``height`` (black bars), lossy H.264 at ``crf`` and AAC sound. Returns ``out``."""
    from talklib.data.video import write_video
    from talklib.outputs import temp_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = write_video(Path(temp_file(out, ".mp4")), frames, FPS, audio=audio, sample_rate=sample_rate,
                        quality=10)
    try:
        vf = (f"fps={fps},scale={width}:-2:flags=bicubic,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:black,"
              "format=yuv420p")
        tmp = temp_file(out, out.suffix)
        cmd = [_ffmpeg(), "-v", "error", "-y", "-i", str(plain), "-vf", vf, "-c:v", "libx264", "-crf", str(crf),
               "-preset", "veryfast", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            raise UserError(f"ffmpeg could not re-encode {out.name}: {proc.stderr.strip()[-300:]}")
        Path(tmp).replace(out)
    finally:
        plain.unlink(missing_ok=True)
    return out
