"""talklib.data.dataset: the corpus/clip API on a tiny generated corpus, and every bad folder."""

import json
import shutil

import numpy as np
import pytest

from talklib.data.dataset import (AU_NAMES, PHONES, Clip, load_clip, load_corpus, load_dataset, validate_clip)
from talklib.errors import UserError

TINY = dict(size=64, train_seconds=1.0, test_seconds=1.0, speech_clips=1, views="yaw_p30")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from talklib.speaker.build import ensure_corpus

    return ensure_corpus(tmp_path_factory.mktemp("corpus") / "tiny", "small", 0, progress=False, **TINY)


def test_corpus_structure(corpus):
    assert corpus.identities == ["id00"]
    assert [c.split for c in corpus.clips()] == ["train", "testA", "testB"]
    assert corpus.au_names == AU_NAMES
    sources = sorted(s.source for s in corpus.speech())
    assert sources == ["arctic", "espeak"]


def test_clip_arrays(corpus):
    clip = corpus.clip()
    T, (H, W) = clip.n_frames, clip.size
    assert (H, W) == (64, 64) and clip.views == ["front", "yaw_p30"]
    assert clip.audio().shape == (T * 640,) and clip.audio().dtype == np.float32
    assert clip.frames("front", [0, 1]).shape == (2, 64, 64, 3)
    assert clip.frames("yaw_p30", [0]).dtype == np.uint8
    a = clip.alpha("front", [0])
    assert a.shape == (1, 64, 64) and 0.1 < a.mean() < 0.9
    assert clip.background().shape == (64, 64, 3)
    assert clip.exp().shape == (T, 79) and clip.id_coeffs().shape == (100,) and clip.alb_coeffs().shape == (100,)
    assert clip.illu().shape == (T, 27) and clip.pose().shape == (T, 6) and clip.head_pose().shape == (T, 4, 4)
    assert clip.au_intensity().shape == (T, 10) and clip.au_labels().dtype == np.uint8
    assert clip.landmarks3d().shape == (T, 478, 3) and clip.landmarks2d("yaw_p30").shape == (T, 478, 2)
    assert clip.phoneme_ids().shape == (T,) and clip.phoneme_ids().max() < len(PHONES)
    assert len(clip.train_ids) + len(clip.val_ids) == T and clip.val_ids[0] == clip.train_ids[-1] + 1
    validate_clip(clip)


def test_cameras_reproject_landmarks(corpus):
    """The stored camera (head frame c2w) and head pose reproduce the stored 2D landmarks."""
    clip = corpus.clip()
    for view in clip.views:
        cam = clip.camera(view)
        i = 3
        pts = clip.landmarks3d()[i].astype(np.float64)                     # world
        w2c = np.linalg.inv(cam.c2w_world[i])
        pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
        u = cam.focal * pc[:, 0] / -pc[:, 2] + cam.cx
        v = -cam.focal * pc[:, 1] / -pc[:, 2] + cam.cy
        assert np.abs(np.stack([u, v], 1) - clip.landmarks2d(view)[i]).max() < 1e-2
        # AD-NeRF transform_matrix = inv(head_pose) @ c2w_world
        assert np.allclose(cam.c2w[i], np.linalg.inv(clip.head_pose()[i]) @ cam.c2w_world[i], atol=1e-4)


def test_speech_clip_truth(corpus):
    s = [s for s in corpus.speech() if s.source == "arctic"][0]
    assert s.text.startswith("and you always")
    ph = s.phonemes()
    assert ph[0].phone == "SIL" and any(p.phone == "DH" for p in ph)
    assert s.exp().shape == (s.n_frames, 79) and s.audio().shape == (s.n_frames * 640,)


def test_load_dataset_dispatch(corpus):
    assert load_dataset(corpus.path).identities == ["id00"]
    assert isinstance(load_dataset(corpus.clip().path), Clip)


def test_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist: make it with"):
        load_corpus(tmp_path / "nope")


def test_not_a_corpus(tmp_path):
    with pytest.raises(UserError, match="is not a corpus folder"):
        load_corpus(tmp_path)
    with pytest.raises(UserError, match="is not a clip folder"):
        load_clip(tmp_path)


def test_broken_json(tmp_path):
    (tmp_path / "corpus.json").write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_corpus(tmp_path)


def test_missing_and_wrong_files(corpus, tmp_path):
    bad = tmp_path / "clip"
    shutil.copytree(corpus.clip().path, bad)
    np.save(bad / "gt" / "exp.npy", np.zeros((3, 79), np.float32))
    with pytest.raises(UserError, match="has shape"):
        load_clip(bad).exp()
    (bad / "bc.png").unlink()
    with pytest.raises(UserError, match="lacks bc.png"):
        load_clip(bad)


def test_bad_view_and_index(corpus):
    clip = corpus.clip()
    with pytest.raises(UserError, match="has no view 'side'"):
        clip.frames("side")
    with pytest.raises(UserError, match="out of range"):
        clip.frames("front", [clip.n_frames])
    with pytest.raises(UserError, match="no ground truth 'foo'"):
        clip.gt("foo")
    with pytest.raises(UserError, match="audio features aud_deepspeech.npy are missing"):
        clip.audio_features("deepspeech")


def test_one_line_messages(tmp_path):
    try:
        load_corpus(tmp_path / "x")
    except UserError as e:
        assert "\n" not in str(e)
    meta = tmp_path / "c"
    meta.mkdir()
    (meta / "corpus.json").write_text(json.dumps({"format_version": 999}))
    with pytest.raises(UserError, match="format version 999"):
        load_corpus(meta)


def test_png_bytes_is_lossless_for_pictures_and_masks_and_refuses_other_arrays():
    import io

    from PIL import Image

    from talklib.data.dataset import png_bytes

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 52, 3), dtype=np.uint8)
    soft = (rng.random((37, 52)) * 255).astype(np.uint8)
    for arr in (rgb, soft, (soft > 127).astype(np.uint8) * 255):
        with Image.open(io.BytesIO(png_bytes(arr))) as im:
            assert np.array_equal(np.asarray(im), arr)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4, 4), np.uint8))
