"""talklib.data.video: mp4 and frames-folder round trips, audio muxing, atomic writes, bad input."""

import numpy as np
import pytest
from PIL import Image

from talklib.data.video import read_video, read_video_audio, write_video
from talklib.errors import UserError


def _frames(n=12, h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (x * 4 + i * 8) % 256
        out[i, ..., 1] = (y * 5) % 256
        out[i, ..., 2] = 128
    return out


def test_mp4_round_trip_with_audio(tmp_path):
    frames = _frames()
    sr = 16000
    t = np.arange(int(sr * 12 / 25)) / sr
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = write_video(tmp_path / "a.mp4", frames, fps=25, audio=audio, sample_rate=sr)
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    back, fps = read_video(out)
    assert back.shape == frames.shape and back.dtype == np.uint8 and fps == 25.0
    assert np.abs(back.astype(int) - frames).mean() < 3.0  # lossy H.264, high quality
    sound = read_video_audio(out, sr)
    assert sound is not None and abs(len(sound) - len(audio)) < 0.05 * sr
    m = min(len(sound), len(audio))
    assert np.corrcoef(sound[500:m - 500], audio[500:m - 500])[0, 1] > 0.99


def test_float_frames_odd_size_and_no_audio(tmp_path):
    frames = _frames(5, 33, 41).astype(np.float32) / 255.0
    out = write_video(tmp_path / "b.mp4", frames, fps=10)
    back, fps = read_video(out)
    assert back.shape == (5, 34, 42, 3) and fps == 10.0  # padded to even by one edge row/column
    assert read_video_audio(out) is None


def test_frames_folder_natural_order(tmp_path):
    frames = _frames(11)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i}.png")
    back, fps = read_video(tmp_path, folder_fps=30)
    assert fps == 30.0 and np.array_equal(back, frames)  # 10.png after 9.png, lossless


def test_bad_input(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no frame images"):
        read_video(tmp_path / "empty")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="cannot be read"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(UserError, match="shape"):
        write_video(tmp_path / "c.mp4", np.zeros((4, 4), np.uint8))
    with pytest.raises(UserError, match=".mp4"):
        write_video(tmp_path / "c.avi", _frames(2))
    with pytest.raises(UserError, match="audio"):
        write_video(tmp_path / "c.mp4", _frames(2), audio=tmp_path / "nope.wav")
    assert not (tmp_path / "c.mp4").exists()
    d = tmp_path / "mixed"
    d.mkdir()
    Image.fromarray(_frames(1)[0]).save(d / "0.png")
    Image.fromarray(_frames(1, 20, 20)[0]).save(d / "1.png")
    with pytest.raises(UserError, match="one size"):
        read_video(d)


def test_written_videos_get_the_usual_permissions(tmp_path):
    import os

    import numpy as np

    from talklib.data.video import write_video

    p = write_video(tmp_path / "v.mp4", np.zeros((3, 16, 16, 3), np.uint8), fps=25) or tmp_path / "v.mp4"
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(p).st_mode & 0o777) == (0o666 & ~umask)
