"""The multi-identity faces corpus (talklib.speaker.faces): layout, inner masks, looks, reuse, refusals."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from talklib.data.dataset import load_clip, validate_clip
from talklib.errors import UserError
from talklib.speaker.faces import (TONE_BASIS, ensure_faces_corpus, fill_polygons, identity_look, identity_model,
                                   inner_face_masks)

TINY = dict(identities=3, test_identities=1, train_seconds=1.0, test_seconds=1.0, size=32, progress=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return ensure_faces_corpus(tmp_path_factory.mktemp("faces") / "faces", **TINY)


def test_layout_and_clips_open(corpus):
    assert corpus.train_names() == ["fid00", "fid01", "fid02"] and corpus.test_names() == ["fid03"]
    body = json.loads((corpus.path / "faces.json").read_text())
    assert body["params"]["size"] == 32 and len(body["identities"]) == 4
    names = sorted(p.name for p in (corpus.path / "clips").iterdir())
    assert names == ["fid00_train", "fid01_train", "fid02_train", "fid03_test", "fid03_train"]
    for name in names:
        clip = load_clip(corpus.path / "clips" / name)
        validate_clip(clip)                       # every file dataset.json lists, inner_mask.npy included
        assert clip.views == ["front"] and clip.size == (32, 32)
    assert corpus.clip("fid03", "test").n_frames >= 25
    with pytest.raises(UserError):
        corpus.clip("fid00", "test")              # training identities have no test clip


def test_inner_masks_inside_alpha_and_not_empty(corpus):
    for name in ("fid00", "fid03"):
        clip = corpus.clip(name)
        mask = np.load(clip.path / "gt" / "inner_mask.npy")
        assert mask.dtype == np.uint8 and mask.shape == (clip.n_frames, 32, 32)
        assert set(np.unique(mask)) <= {0, 255}
        inside = mask > 0
        assert inside.sum((1, 2)).min() > 50
        assert not (inside & (clip.alpha() < 0.5)).any()


def test_identities_differ(corpus):
    from talklib.face3d.model import MorphableModel

    base = MorphableModel.from_asset()
    a, b = identity_look(0, 0), identity_look(1, 0)
    assert a["id_coeff"] != b["id_coeff"] and a["alb_coeff"] != b["alb_coeff"]
    assert np.abs(identity_model(base, a).texture - identity_model(base, b).texture).mean() > 0.01
    f0, f1 = corpus.clip("fid00").frame(0).astype(float), corpus.clip("fid01").frame(0).astype(float)
    assert np.abs(f0 - f1).mean() > 5.0
    np.testing.assert_allclose(base.alb_basis[:4, 0], TONE_BASIS, atol=1e-6)   # skin tones solve the right basis


def test_second_call_reuses_and_new_args_rebuild(corpus, tmp_path):
    path = tmp_path / "faces"
    shutil.copytree(corpus.path, path)                 # a copy: the other tests keep the module's corpus
    stamp = (path / "faces.json").stat().st_mtime_ns
    again = ensure_faces_corpus(path, **TINY)
    assert again.identities == corpus.identities
    assert (path / "faces.json").stat().st_mtime_ns == stamp
    other = ensure_faces_corpus(path, **{**TINY, "identities": 2, "test_identities": 0})
    assert (path / "faces.json").stat().st_mtime_ns != stamp
    assert other.train_names() == ["fid00", "fid01"] and other.test_names() == []
    assert sorted(p.name for p in (path / "clips").iterdir()) == ["fid00_train", "fid01_train"]


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a talklib faces corpus"):
        ensure_faces_corpus(tmp_path / "mine", **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_killed_build_does_not_count(corpus, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".faces.building-{dead.pid}"
    shutil.copytree(corpus.path, leftover)              # complete-looking, but never renamed into place
    out = tmp_path / "faces"
    assert not out.exists()
    made = ensure_faces_corpus(out, **{**TINY, "identities": 1, "test_identities": 0})
    assert made.train_names() == ["fid00"] and not leftover.exists()


def test_fill_polygons_even_odd():
    square = np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 5.0], [1.0, 5.0]])
    m = fill_polygons(square, 8, 8)
    assert m.sum() == 16 and m[1:5, 1:5].all()
    lmk = np.zeros((2, 478, 2))
    alpha = np.full((2, 8, 8), 255, np.uint8)
    assert inner_face_masks(lmk, alpha).max() == 0             # a degenerate polygon holds nothing
