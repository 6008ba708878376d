"""build_training_clip: the corpus's training clip alone, byte for byte; threaded writing; device checks."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talklib.cli import main

TINY = dict(train_seconds=2.0, test_seconds=1.0, size=64, views="yaw_m30", identities=2, speech_clips=0)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from talklib.speaker.build import ensure_corpus

    return ensure_corpus(tmp_path_factory.mktemp("corpus") / "c", "small", 5, progress=False, **TINY)


@pytest.mark.parametrize("identity", [0, 1])
def test_training_clip_is_the_corpus_clip(corpus, tmp_path, identity):
    from talklib.speaker.build import build_training_clip

    clip = build_training_clip(tmp_path / "train", "small", 5, identity, progress=False, **TINY)
    ref = _files(corpus.path / "clips" / f"id{identity:02d}_train")
    got = _files(tmp_path / "train")
    assert sorted(got) == sorted(ref) and "dataset.json" in got and "views/yaw_m30/0.png" in got
    assert [k for k in ref if got[k] != ref[k]] == []
    assert clip.identity == f"id{identity:02d}" and clip.views == ["front", "yaw_m30"] and clip.size == (64, 64)
    assert (np.abs(clip.id_coeffs()).sum() > 0) == (identity > 0)
    assert [p.name for p in tmp_path.iterdir()] == ["train"]           # no temporary folder left


def test_unknown_identity(tmp_path):
    from talklib.errors import UserError
    from talklib.speaker.build import build_training_clip

    with pytest.raises(UserError, match=r"identity 2 has no training clip in preset 'small': choose 0\.\.1"):
        build_training_clip(tmp_path / "x", "small", 0, 2, progress=False, **TINY)
    assert not list(tmp_path.iterdir())


def test_no_pocketsphinx_or_pysptk(tmp_path):
    code = ("import sys; from talklib.speaker.build import build_training_clip; "
            f"build_training_clip({str(tmp_path / 'c')!r}, 'small', 0, 0, progress=False, size=64, "
            "train_seconds=1.0, views='front'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pocketsphinx', 'pysptk', 'mediapipe')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "c" / "ori_imgs" / "0.png").is_file()


def _tiny_clip_args():
    from talklib.face3d.model import default_illumination

    T = 9
    rng = np.random.default_rng(0)
    exp = np.clip(rng.uniform(0, 0.5, (T, 79)), 0, 1).astype(np.float32)
    pose = np.zeros((T, 6), np.float32)
    pose[:, 0] = np.linspace(-5, 5, T)
    curves = {"exp": exp, "pose": pose, "illu": np.repeat(default_illumination()[None], T, 0),
              "blink_rate": np.float32(0.3)}
    audio = np.zeros(T * 640, np.float32)
    bg = np.full((40, 40, 3), 90, np.uint8)
    return ("c", audio, [("SIL", 0.0, T / 25)], curves, np.zeros(100, np.float32), np.zeros(100, np.float32), bg,
            ["front", "yaw_p20"], 40, {"identity": "id00"})


def test_threads_do_not_change_bytes(tmp_path):
    from talklib.speaker.clip import write_clip

    done = []
    for w in (1, 3):
        write_clip(tmp_path / f"w{w}", *_tiny_clip_args(), batch=2, workers=w, progress=done.append)
    assert _files(tmp_path / "w1") == _files(tmp_path / "w3")
    assert sum(done) == 2 * 2 * 9 and len(list((tmp_path / "w3" / "views" / "yaw_p20").iterdir())) == 9


def test_worker_errors_propagate(tmp_path, monkeypatch):
    import talklib.speaker.clip as clip

    calls = []
    real = clip.png_bytes

    def flaky(arr):
        calls.append(1)
        if len(calls) == 7:
            raise OSError("disk full (test)")
        return real(arr)

    monkeypatch.setattr(clip, "png_bytes", flaky)
    with pytest.raises(OSError, match="disk full"):
        clip.write_clip(tmp_path / "c", *_tiny_clip_args(), batch=2, workers=3)
    assert not (tmp_path / "c" / "transforms_train.json").exists()


def test_face_rects_known_answer():
    from talklib.speaker.clip import face_rects

    a = np.zeros((3, 6, 8), np.uint8)
    a[0, 1:4, 2:7] = 255
    a[1, 5, 0] = 200
    a[2, 2, 3] = 127                     # not > 127: empty
    assert face_rects(a).tolist() == [[2, 1, 5, 3], [0, 5, 1, 1], [0, 0, 0, 0]]


def test_gpu_normal_sum_matches_cpu_order():
    """The gather sum used off the CPU adds the same terms in index_add_'s order: bit-identical on the CPU."""
    from talklib.face3d.model import MorphableModel
    from talklib.face3d.render import _sum_incident, incident_faces

    t = MorphableModel.from_asset().tensors()
    faces = t["faces"]
    verts = t["mean"][None] + 0.01 * torch.randn(2, *t["mean"].shape, generator=torch.Generator().manual_seed(0))
    fn = torch.cross(verts[:, faces[:, 1]] - verts[:, faces[:, 0]], verts[:, faces[:, 2]] - verts[:, faces[:, 0]],
                     dim=-1)
    ref = torch.zeros_like(verts)
    for k in range(3):
        ref.index_add_(1, faces[:, k], fn)
    inc = incident_faces(faces, verts.shape[1])
    assert torch.equal(_sum_incident(fn, inc), ref)
    assert int((inc < faces.shape[0]).sum()) == faces.numel()


def _cli(capsys, *argv):
    code = main(["synth", *argv])
    return code, capsys.readouterr()


def test_cli_train_clip(tmp_path, capsys):
    code, cap = _cli(capsys, "--train-clip", "--out", str(tmp_path / "t"), "--identity", "1", "-p", "identities=2",
                     "-p", "synth_size=64", "-p", "train_seconds=1", "-p", "synth_views=yaw_m20")
    assert code == 0 and "wrote clip" in cap.out and "on cpu" in cap.out
    from talklib.data.dataset import load_clip

    clip = load_clip(tmp_path / "t")
    assert clip.identity == "id01" and clip.split == "train" and clip.views == ["front", "yaw_m20"]


@pytest.mark.parametrize("argv,message", [
    (["--device", "tpu"], "unknown --device 'tpu': use cpu, cuda, cuda:N or auto"),
    (["--device", "cuda:x"], "unknown --device 'cuda:x'"),
    pytest.param(["--device", "cuda"], "--device cuda asked for but no CUDA GPU is visible",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")),
    (["--identity", "1"], "identity 1 has no training clip in preset 'small'"),
])
def test_cli_bad_device_or_identity(tmp_path, capsys, argv, message):
    code, cap = _cli(capsys, "--train-clip", "--out", str(tmp_path / "o"), *argv)
    err = cap.err.strip()
    assert code == 2 and message in err and err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "o").exists()
