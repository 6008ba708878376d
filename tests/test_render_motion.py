"""DFA-NeRF's rendering (Section 3.5): the field on f_c = [f_a, f_e] and a generated head pose per frame.

The eye-blink embedding ``f_e`` is a condition read from the clip's ``aud_eyes.npy``; ``iter_frames(pose=...)``
moves the head in front of the recorded camera; ``talklib.nerf.command.run(drive=...)`` takes a motion
generator's pose and parts; ``python -m talklib render --motion CKPT`` (``talklib.render``) puts them together.
The motion generator (``talklib.motion.generator``) is faked here: these tests are about the rendering side.
"""

import importlib
import json
import shutil
import sys
import types
from argparse import Namespace
from dataclasses import replace

import numpy as np
import pytest
import torch

from talklib.cli import main
from talklib.errors import UserError

TINY = ["-p", "nerf_size=16", "-p", "nerf_samples=8", "-p", "nerf_occ_res=8", "-p", "nerf_plane_res=8",
        "-p", "nerf_hidden=8", "-p", "nerf_cond_code=4", "-p", "nerf_feat_dim=4", "-p", "cond_audio_dim=4",
        "-p", "cond_frames=2", "-p", "nerf_depth_weight=0", "-p", "nerf_steps=2", "--ckpt-every", "2", "--eval-every", "2"]


def _one_line(capsys, argv, needle):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and needle in err, err
    return err


# ---- a fake of talklib.motion.generator (load_generator / drive) ------------------------------------------------

class FakeGenerator:
    def __init__(self, eye_dim):
        self.eye_dim = eye_dim


@pytest.fixture
def generator(monkeypatch, tmp_path):
    """A motion-generator file (its text: eye_dim) and the calls ``drive`` got; the generator yaws the head by
    ``seed`` degrees around the pose ``base`` and gives f_e = 3 everywhere."""
    try:
        mod = importlib.import_module("talklib.motion.generator")
    except ModuleNotFoundError:
        mod = types.ModuleType("talklib.motion.generator")
        monkeypatch.setitem(sys.modules, "talklib.motion.generator", mod)
    calls, base = [], {"pose": np.zeros(6, np.float32)}

    def load_generator(path):
        try:
            return FakeGenerator(int(open(path).read()))
        except (OSError, ValueError):
            raise UserError(f"no motion generator at {path}: train one with notebook 08") from None

    def drive(gen, audio, n_frames, seed=0, sample=True):
        calls.append({"n": n_frames, "seed": seed, "samples": len(audio)})
        pose = np.repeat(base["pose"][None], n_frames, 0).astype(np.float32)
        pose[:, 0] += seed * np.linspace(0, 1, n_frames)
        return {"pose": pose, "f_e": np.full((n_frames, gen.eye_dim), 3.0, np.float32)}

    monkeypatch.setattr(mod, "load_generator", load_generator, raising=False)
    monkeypatch.setattr(mod, "drive", drive, raising=False)
    path = tmp_path / "motion.pt"
    path.write_text("4")
    return types.SimpleNamespace(path=path, calls=calls, base=base)


# ---- f_e: parsed, read for training, defaulted when rendering ----------------------------------------------------

def test_f_e_is_a_sizable_per_frame_part_not_made_from_audio():
    from talklib.condition.spec import parse

    parts = parse("f_illu,f_e:4,f_a")
    assert [str(p) for p in parts] == ["f_e:4", "f_a", "f_illu"]        # packed with the 3DMM and prior parts
    fe = parts[0]
    assert fe.is_motion and fe.from_file and not fe.from_audio and not fe.is_prior and not fe.is_audio
    for bad in ("f_e:0", "f_e:65", "f_e:x"):
        with pytest.raises(UserError, match="size must be"):
            parse(bad)


def test_f_e_is_read_from_aud_eyes_and_packed_per_frame(featured_corpus):
    from talklib.condition.inputs import config_for, from_clip

    clip = featured_corpus.clip(split="train")
    eyes = np.load(clip.path / "aud_eyes.npy")
    cfg = config_for(clip, "f_a,f_e:4,f_illu")
    assert list(cfg.raw_layout()) == ["f_e", "audio", "f_illu"] and cfg.raw_layout()["f_e"] == 4
    np.testing.assert_array_equal(from_clip(clip, cfg)[:, :4], eyes[:clip.n_frames, :4])
    assert config_for(clip, "f_e").raw_layout() == {"f_e": 6}          # no size: every number of the file
    with pytest.raises(UserError, match="f_e:6 or fewer"):
        from_clip(clip, config_for(clip, "f_e:8"))


def test_train_refuses_a_clip_without_aud_eyes_naming_notebook_08(featured_corpus, tmp_path, capsys):
    clip = tmp_path / "clip"
    shutil.copytree(featured_corpus.clip(split="train").path, clip)
    (clip / "aud_eyes.npy").unlink()
    out = tmp_path / "ck"
    err = _one_line(capsys, ["train", "--data", str(clip), "--conditions", "f_a,f_e:4,f_illu", "--out", str(out), *TINY],
                    "aud_eyes.npy")
    assert "notebook 08" in err and not out.exists()


@pytest.fixture(scope="module")
def eyes_ckpt(featured_corpus, tmp_path_factory):
    """``python -m talklib train --conditions f_a,f_e:4,f_illu`` on the featured corpus (two steps)."""
    out = tmp_path_factory.mktemp("eyes") / "ck"
    argv = ["train", "--data", str(featured_corpus.path), "--conditions", "f_a,f_e:4,f_illu", "--out", str(out), *TINY]
    assert main(argv) == 0
    assert json.loads((out / "train.json").read_text())["conditions"] == "f_e:4,f_a,f_illu"
    return out


@pytest.fixture(scope="module")
def speech(featured_corpus, tmp_path_factory):
    """The first 0.6 s (15 frames) of the testA clip's speech."""
    import soundfile as sf

    p = tmp_path_factory.mktemp("speech") / "a.wav"
    sf.write(p, featured_corpus.clip(split="testA").audio()[:9600], 16000)
    return p


def test_without_a_generator_f_e_keeps_the_training_mean(eyes_ckpt, featured_corpus):
    from talklib.nerf.talk import conditions_from_audio, load_talker

    model, a2e, extra = load_talker(eyes_ckpt)
    assert a2e is None and tuple(extra["head_pose"].shape) == (4, 4)
    cond = conditions_from_audio(a2e, extra, featured_corpus.clip(split="testA").audio(), model)
    torch.testing.assert_close(cond[:, :4], extra["cond_default"][:4].expand(cond.shape[0], -1))
    train = featured_corpus.clip(split="train")
    assert not torch.allclose(extra["cond_default"][:4], torch.zeros(4))
    np.testing.assert_allclose(extra["cond_default"][:4].numpy(),
                               np.load(train.path / "aud_eyes.npy")[train.train_ids, :4].mean(0), rtol=1e-5, atol=1e-6)


# ---- the head pose per frame -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def posed():
    """A tiny untrained field on a toy scene with f_e (3 numbers) and the head poses of its frames, and its
    render settings (reference frame 1)."""
    from talklib.face3d.camera import pose_matrix
    from talklib.nerf.audio2exp import Audio2Exp
    from talklib.nerf.scene import toy_scene
    from talklib.nerf.talk import render_extra
    from talklib.nerf.train import model_for_scene

    scene = toy_scene(n_frames=5, size=16, seed=0, novel_yaws=())
    rng = np.random.default_rng(0)
    pose = np.zeros((5, 6), np.float32)
    pose[:, :3], pose[:, 3:] = rng.normal(0, 3, (5, 3)), rng.normal(0, 0.01, (5, 3))
    eyes = torch.from_numpy(rng.normal(size=(5, 3)).astype(np.float32))
    scene = replace(scene, cond=torch.cat([scene.cond, eyes], 1), cond_parts={"f_exp": 2, "f_e": 3},
                    head_pose=pose_matrix(torch.from_numpy(pose).double()).float())
    torch.manual_seed(0)
    model = model_for_scene(scene, n_samples=8, occ_res=8, field=dict(plane_res=[8], hidden=8, cond_code=4)).eval()
    extra = render_extra(scene, Audio2Exp(out_dim=2, hidden=16), (0, 2), scene.cond.mean(0), ref_frame=1)
    return types.SimpleNamespace(model=model, extra=extra, pose=pose, cond=scene.cond.mean(0).expand(4, -1).clone())


def test_render_extra_keeps_the_reference_head_pose(posed):
    from talklib.face3d.camera import pose_matrix

    torch.testing.assert_close(posed.extra["head_pose"], pose_matrix(torch.from_numpy(posed.pose[1]).double()).float())


def test_the_reference_pose_gives_the_recorded_view_and_a_turned_head_another(posed):
    from talklib.nerf.rays import orbit
    from talklib.nerf.talk import pose_cameras, render_frames

    m, e, cond = posed.model, posed.extra, posed.cond
    ref = np.repeat(posed.pose[1:2], 4, 0)
    torch.testing.assert_close(pose_cameras(e, 4, 10.0, 5.0, m.center, ref),
                               orbit(e["c2w"][None], 10.0, 5.0, m.center).expand(4, -1, -1), atol=1e-5, rtol=0)
    plain = render_frames(m, e, cond, progress=False).astype(int)
    same = render_frames(m, e, cond, progress=False, pose=ref)
    assert np.abs(plain - same).max() <= 1
    turned = ref.copy()
    turned[:, 0] += 20.0                 # the head yawed 20 degrees
    other = render_frames(m, e, cond, progress=False, pose=turned)
    assert np.abs(plain - other).mean() > 0.5
    # frame by frame: only the frames whose pose differs change
    mixed = ref.copy()
    mixed[2:] = turned[2:]
    got = render_frames(m, e, cond, progress=False, pose=mixed, batch=3)
    assert np.abs(got[:2] - plain[:2]).max() <= 1 and np.abs(got[2:] - other[2:].astype(int)).max() <= 1


def test_a_pose_for_a_checkpoint_without_head_pose_or_of_the_wrong_shape_is_one_line(posed):
    from talklib.nerf.talk import iter_frames

    old = {k: v for k, v in posed.extra.items() if k != "head_pose"}
    with pytest.raises(UserError, match="retrain") as e:
        iter_frames(posed.model, old, posed.cond, pose=np.zeros((4, 6)))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"\(4, 6\)"):
        iter_frames(posed.model, posed.extra, posed.cond, pose=np.zeros((3, 6)))


# ---- the drive hook ----------------------------------------------------------------------------------------------

def test_replace_parts_sets_the_named_columns_ignores_others_refuses_other_widths(posed):
    from talklib.nerf.talk import replace_parts

    cond = posed.cond
    out, ignored = replace_parts(posed.model, cond, {"f_e": np.full((4, 3), 7.0), "f_m": np.zeros((4, 2))})
    assert ignored == ["f_m"]
    assert torch.equal(out[:, 2:5], torch.full((4, 3), 7.0)) and torch.equal(out[:, :2], cond[:, :2])
    with pytest.raises(UserError) as e:
        replace_parts(posed.model, cond, {"f_e": np.zeros((4, 4))})
    assert "4 numbers" in str(e.value) and "f_e:3" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="rows"):
        replace_parts(posed.model, cond, {"f_e": np.zeros((2, 3))})


@pytest.fixture(scope="module")
def posed_ckpt(posed, tmp_path_factory):
    from talklib.nerf.train import save_checkpoint

    d = tmp_path_factory.mktemp("posed")
    save_checkpoint(d / "nerf.pt", posed.model, extra=posed.extra)
    return d


def test_run_takes_the_drive_hooks_pose_and_parts(posed, posed_ckpt, wav, tmp_path):
    from talklib.data.video import read_video
    from talklib.nerf import command as nerf_command

    def args(out):
        return Namespace(checkpoint=str(posed_ckpt), audio=str(wav), out=str(tmp_path / out), yaw=0.0, pitch=0.0,
                         device="cpu", batch=8, force=False)

    seen = []

    def hook(f_e, pose=None):
        def drive(audio, n):
            seen.append((len(audio), n))
            return {"pose": pose if pose is None else np.repeat(pose[None], n, 0), "parts": {"f_e": f_e(n)}}
        return drive

    assert nerf_command.run(args("plain.mp4")) == 0
    assert nerf_command.run(args("same.mp4"), drive=hook(lambda n: np.zeros((n, 3)) + posed.extra["cond_default"][2:5].numpy(),
                                                           posed.pose[1])) == 0
    assert nerf_command.run(args("eyes.mp4"), drive=hook(lambda n: np.full((n, 3), 3.0))) == 0
    assert seen[0] == (3200, 5)           # 0.2 s of audio, 5 frames
    plain, same, eyes = (read_video(tmp_path / f)[0].astype(int) for f in ("plain.mp4", "same.mp4", "eyes.mp4"))
    assert np.abs(plain - same).mean() < 0.5 and np.abs(plain - eyes).mean() > 0.5
    with pytest.raises(UserError, match="f_e:3"):
        nerf_command.run(args("wide.mp4"), drive=hook(lambda n: np.zeros((n, 5))))
    assert not (tmp_path / "wide.mp4").exists()


# ---- python -m talklib render --motion ---------------------------------------------------------------------------

def test_render_motion_end_to_end(eyes_ckpt, featured_corpus, generator, speech, tmp_path, capsys):
    from talklib.data.video import read_video

    generator.base["pose"] = featured_corpus.clip(split="train").pose()[0]
    base = ["render", "--checkpoint", str(eyes_ckpt), "--audio", str(speech), "--device", "cpu"]
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "m.mp4"), "--motion", str(generator.path), "--motion-seed", "8"]) == 0
    said = capsys.readouterr().out
    assert f"head pose and blinks generated by {generator.path} (seed 8)" in said and "yaw" in said
    assert generator.calls == [{"n": 15, "seed": 8, "samples": 9600}]
    frames, _ = read_video(tmp_path / "m.mp4")
    assert frames.shape == (15, 16, 16, 3)


def test_render_motion_with_a_real_generator(eyes_ckpt, featured_corpus, speech, tmp_path, capsys):
    """The same with ``talklib.motion.generator`` itself: an untrained tiny generator whose Beginning Of Pose is the
    training clip's first frames, saved and given to ``--motion``; two seeds, two head motions."""
    G = pytest.importorskip("talklib.motion.generator")
    from talklib.audio.contrastive import AudioEncoder
    from talklib.data.video import read_video
    from talklib.motion import vae as V

    train = featured_corpus.clip(split="train")
    h = np.c_[train.pose(), np.load(train.path / "aud_eyes.npy")[:, :4]].astype(np.float64)
    torch.manual_seed(0)
    cfg = V.VAEConfig(d_in=10, z_dim=4, width=16, layers=1, heads=2, seq_len=12)
    gen = G.MotionGenerator(AudioEncoder(dim=8).eval(), V.MotionVAE(cfg).eval(),
                            V.CrossModalEncoder(V.CMEConfig.for_vae(cfg, a_dim=8)).eval(), h.mean(0),
                            np.r_[[2.0, 2.0, 2.0, 0.005, 0.005, 0.005], np.ones(4)], h[:4], 12, "id00")
    path = G.save_generator(tmp_path / "motion.pt", gen)
    base = ["render", "--checkpoint", str(eyes_ckpt), "--audio", str(speech), "--device", "cpu",
            "--motion", str(path)]
    assert main(base + ["--out", str(tmp_path / "a.mp4")]) == 0
    assert f"generated by {path} (seed 0)" in capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "b.mp4"), "--motion-seed", "1"]) == 0
    a, b = read_video(tmp_path / "a.mp4")[0], read_video(tmp_path / "b.mp4")[0]
    assert a.shape == b.shape == (15, 16, 16, 3)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("case,needle", [("missing", "no motion generator at"), ("width", "f_e:4"),
                                         ("seed_alone", "without --motion"), ("negative_seed", "0 or more")])
def test_bad_motion_input_is_one_line_and_writes_nothing(eyes_ckpt, generator, speech, tmp_path, capsys, case, needle):
    out = tmp_path / "m.mp4"
    argv = ["render", "--checkpoint", str(eyes_ckpt), "--audio", str(speech), "--out", str(out), "--device", "cpu",
            "--motion", str(generator.path)]
    if case == "missing":
        argv[-1] = str(tmp_path / "nothing.pt")
    elif case == "width":
        generator.path.write_text("3")          # a generator of 3 eye numbers for a field on f_e:4
    elif case == "seed_alone":
        argv = argv[:-2] + ["--motion-seed", "1"]
    else:
        argv += ["--motion-seed", "-1"]
    _one_line(capsys, argv, needle)
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))
