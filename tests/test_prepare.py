"""``python -m talklib prepare``: a phone-style video of the synthetic speaker in, a training set out, checked
against the ground truth; and every kind of bad input the issue lists.

The figures asserted were measured on two identities (benchmarks/RESULTS.md, "Your own video"); the
thresholds leave a margin of about 1.5x over the worst one seen.
"""

import subprocess
import threading

import numpy as np
import pytest

from talklib.cli import main
from talklib.data.dataset import load_clip, validate_clip
from talklib.data.video import write_video
from talklib.prepare.accuracy import compare, letterbox_of
from talklib.prepare.video import phone_style

TEXT = ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine, "
        "and the early bird catches the worm today.")


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """A synthetic clip of identity 2 (about 8 s) and its phone-style video (30 fps, 720x1280, lossy)."""
    root = tmp_path_factory.mktemp("prepare")
    assert main(["synth", "--out", str(root / "truth"), "--text", TEXT, "--identity", "2", "--seed", "3",
                 "-p", "synth_views=yaw_p30"]) == 0     # one novel view only: the test reads the front one
    clip = load_clip(root / "truth")
    phone_style(clip.frames(), clip.audio(), root / "phone.mp4")
    return root, clip


@pytest.fixture(scope="module")
def prepared(truth):
    root, clip = truth
    assert main(["prepare", "--video", str(root / "phone.mp4"), "--out", str(root / "me"), "--quiet"]) == 0
    return load_clip(root / "me")


def test_prepared_folder_is_a_dataset_train_reads(prepared):
    validate_clip(prepared)
    assert prepared.meta["source"] == "prepared"
    assert prepared.size == (128, 128)
    assert len(prepared.audio()) == prepared.n_frames * 640
    for kind in ("mel", "mfcc", "mel_win", "mfcc_win"):
        assert len(prepared.audio_features(kind)) == prepared.n_frames
    assert (prepared.path / "prepare_report.html").stat().st_size > 20_000
    from talklib.nerf.scene import from_clip

    scene = from_clip(prepared, conditions="f_exp:12,f_illu", masks=True)
    assert scene.images.shape[0] == prepared.n_frames and len(scene.test_idx) > 0
    assert float(scene.alpha.mean()) > 0.2     # the head fills a good part of the crop


def test_prepare_recovers_the_truth(truth, prepared):
    """Measured on five synthetic clips (this one, identity 2: 3.39 deg, 3.54 mm, jaw r 0.95, blinks r 0.95 / 0.95,
    NME 0.027): rotation error median 2.5-3.4 deg on four, 8.4 deg on identity 3 with seed 3's look, mostly a
    constant pitch offset between mediapipe's landmarks and the model's; translation 2.2-4.0 mm; jaw_open r
    0.92-0.96; landmark NME 0.025-0.032. The issue's target of 1.5 deg is not met (RESULTS.md says why)."""
    _, clip = truth
    r = compare(prepared, clip, letterbox_of(clip.size[1]))
    assert r["frames"] == clip.n_frames
    assert r["rot_err_deg_median"] <= 5.0, r
    assert r["trans_err_mm_median"] <= 6.0, r
    assert r["exp_corr"]["jaw_open"] >= 0.8, r
    assert max(r["exp_corr"]["blink_left"], r["exp_corr"]["blink_right"]) >= 0.7, r
    assert r["lmk_nme_median"] <= 0.04, r


def test_lost_frames_two_faces_and_separate_audio(truth, tmp_path, capsys):
    """Face gone for 3 frames (bridged) and for 40 (dropped with their sound); a second, smaller face in the
    last frames (the largest is used); no sound track, the speech given with --audio."""
    _, clip = truth
    frames = clip.frames().copy()
    bg = clip.background()
    frames[40:43] = bg
    frames[100:140] = bg
    small = frames[150:, ::3, ::3]
    frames[150:, :small.shape[1], :small.shape[2]] = small
    import soundfile as sf

    sf.write(tmp_path / "speech.wav", clip.audio(), 16000)
    phone_style(frames, None, tmp_path / "silent.mp4")
    out = tmp_path / "me"
    assert main(["prepare", "--video", str(tmp_path / "silent.mp4"), "--audio", str(tmp_path / "speech.wav"),
                 "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    c = load_clip(out)
    gaps = c.meta["prepare"]["gaps"]
    assert {"start": 40, "end": 43, "frames": 3, "action": "interpolated"} in gaps
    assert {"start": 100, "end": 140, "frames": 40, "action": "dropped"} in gaps
    assert c.n_frames == clip.n_frames - 40
    assert len(c.audio()) == c.n_frames * 640
    # the sound after the cut is the sound of the frames after the cut
    assert np.allclose(c.audio()[100 * 640:101 * 640], clip.audio()[140 * 640:141 * 640], atol=2e-4)
    assert "largest" in said and "3 interpolated, 40 dropped" in said


def _fails(capsys, *argv) -> str:
    assert main(["prepare", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_videos(truth, tmp_path, capsys):
    root, clip = truth
    write_video(tmp_path / "noface.mp4", np.repeat(clip.background()[None], 75, 0), 25, audio=clip.audio()[:48000])
    assert "no face was found" in _fails(capsys, "--video", str(tmp_path / "noface.mp4"), "--out", str(tmp_path / "a"))
    write_video(tmp_path / "short.mp4", clip.frames("front", np.arange(50)), 25, audio=clip.audio()[:32000])
    assert "at least 5 s" in _fails(capsys, "--video", str(tmp_path / "short.mp4"), "--out", str(tmp_path / "b"))
    write_video(tmp_path / "mute.mp4", clip.frames("front", np.arange(50)), 25)
    assert "--audio" in _fails(capsys, "--video", str(tmp_path / "mute.mp4"), "--out", str(tmp_path / "c"))
    (tmp_path / "cut.mp4").write_bytes((root / "phone.mp4").read_bytes()[:3000])
    assert "cut short" in _fails(capsys, "--video", str(tmp_path / "cut.mp4"), "--out", str(tmp_path / "d"))
    (tmp_path / "text.mp4").write_text("not a video\n")
    assert "no video stream" in _fails(capsys, "--video", str(tmp_path / "text.mp4"), "--out", str(tmp_path / "e"))
    assert "does not exist" in _fails(capsys, "--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "f"))
    for name in "abcdef":
        assert not (tmp_path / name).exists()
    assert not list(tmp_path.glob(".*building*"))


def test_existing_output_is_refused_without_force(truth, tmp_path, capsys):
    root, _ = truth
    (tmp_path / "me").mkdir()
    (tmp_path / "me" / "keep.txt").write_text("mine")
    assert "--force" in _fails(capsys, "--video", str(root / "phone.mp4"), "--out", str(tmp_path / "me"))
    assert (tmp_path / "me" / "keep.txt").read_text() == "mine"


def test_phone_quirks_variable_frame_rate_and_rotation(truth, tmp_path):
    """A phone's variable frame rate (frame times jittered by up to 13 ms, in an mkv) still gives 25 fps frames
    covering the whole video; a portrait video stored landscape with a rotation in its display matrix (what
    phones write) is decoded upright."""
    from itertools import islice

    import imageio_ffmpeg

    from talklib.prepare.track import track
    from talklib.prepare.video import frames_25, open_video

    root, clip = truth
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    vfr = tmp_path / "vfr.mkv"
    subprocess.run([ff, "-v", "error", "-i", str(root / "phone.mp4"), "-vf", "setpts=PTS+0.013*mod(N\\,3)/TB",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "30", "-c:a", "copy", str(vfr)], check=True)
    src = open_video(vfr)
    n = sum(len(b) for b in frames_25(src))
    assert abs(n - clip.n_frames) <= 2
    first = frames_25(src, batch=1, ahead=1)       # stopped early: its reader thread and ffmpeg end
    assert next(first).shape == (1, src.height, src.width, 3)
    first.close()
    assert not any(t.name == "frames_25" and t.is_alive() for t in threading.enumerate())
    assert track(islice(frames_25(src), 3), progress=False).found.all()
    stored = tmp_path / "landscape.mp4"
    subprocess.run([ff, "-v", "error", "-i", str(root / "phone.mp4"), "-vf", "transpose=2", "-c:v", "libx264",
                    "-crf", "30", "-c:a", "copy", str(stored)], check=True)
    rotated = tmp_path / "rotated.mov"
    subprocess.run([ff, "-v", "error", "-display_rotation", "-90", "-i", str(stored), "-c", "copy", str(rotated)],
                   check=True)
    src = open_video(rotated)
    assert (src.width, src.height) == (720, 1280)
    assert track(islice(frames_25(src), 3), progress=False).found.all()
