"""Fixtures shared by several test files: a tiny renderable NeRF checkpoint, a short wav, a tiny featured corpus,
and ``killed``, a trainer stopped between checkpoints as ``kill -9`` would."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A checkpoint folder ``python -m talklib render`` accepts: a toy NeRF with its render settings."""
    from talklib.nerf.audio2exp import Audio2Exp
    from talklib.nerf.scene import toy_scene
    from talklib.nerf.talk import render_extra
    from talklib.nerf.train import model_for_scene, save_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    scene = toy_scene(n_frames=5, size=16, seed=0)
    torch.manual_seed(0)
    model = model_for_scene(scene, n_samples=8, occ_res=8, field=dict(plane_res=[8], hidden=8, cond_code=4))
    extra = render_extra(scene, Audio2Exp(out_dim=2, hidden=16), (0, 2), scene.cond.mean(0))
    save_checkpoint(d / "nerf.pt", model, extra=extra)
    return d


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """0.2 s of a 220 Hz tone at 16 kHz."""
    import soundfile as sf   # imported here: the GPU machine runs the kernel tests without it

    p = tmp_path_factory.mktemp("aud") / "a.wav"
    t = np.arange(int(0.2 * 16000)) / 16000
    sf.write(p, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return p


@pytest.fixture(scope="session")
def featured_corpus(tmp_path_factory):
    """A tiny synthetic corpus (1 s clips, 64 px) whose rendered clips carry every audio feature and the
    feature networks beside them, as notebook 02 leaves them, made with untrained networks (fast), and an
    eye-blink embedding f_e of 6 numbers per frame (``aud_eyes.npy``, as notebook 08 leaves it)."""
    from talklib.audio import features as F
    from talklib.audio.contrastive import AudioEncoder
    from talklib.audio.recognizer import PhonemeRecognizer
    from talklib.audio.speechsplit import SpeechSplit, SpeechSplitConfig
    from talklib.condition.extract import BUNDLE_NAME, features_from_audio, make_bundle, save_bundle
    from talklib.condition.spec import parse
    from talklib.speaker.build import ensure_corpus

    corpus = ensure_corpus(tmp_path_factory.mktemp("featured") / "tiny", "small", 0, progress=False, size=64,
                           train_seconds=1.0, test_seconds=1.0, speech_clips=1, views="yaw_p30")
    torch.manual_seed(0)
    bundle = make_bundle(SpeechSplit(SpeechSplitConfig(conv_content=16, conv_pitch=16, conv_rhythm=8, dec_dim=16,
                                                       dec_layers=1, n_speakers=2)),
                         PhonemeRecognizer(hidden=16), AudioEncoder(dim=8), f0_stats=(5.0, 0.2))
    bundle["prior"] = tiny_prior(corpus.clip(split="train"))
    parts = parse("a_content,a_rhythm,a_pitch,deepspeech,f_a,f_exp_aud,f_exp_style")
    for c in corpus.clips():
        feats = F.compute_features(c.audio(), c.n_frames)
        feats.update(features_from_audio(c.audio(), parts, bundle, n_frames=c.n_frames))
        feats["eyes"] = np.random.default_rng(0).normal(size=(c.n_frames, 6)).astype(np.float32)
        F.write_features(c.path, feats)
        save_bundle(c.path / BUNDLE_NAME, bundle)
    return corpus


def tiny_prior(clip) -> dict:
    """NeRF-3DTalker's disentanglement module (``talklib.condition.disentangle``) of untrained tiny networks,
    its identity crop a patch of the clip's first frame and its style reference the clip's expression."""
    from talklib.condition import disentangle as DS
    from talklib.condition import lipwav as LW
    from talklib.condition import prior3d as RG
    from talklib.condition import style as ST

    torch.manual_seed(0)
    gen = LW.LipWavGenerator(LW.LipWavConfig(width=4, audio_dim=8))
    reg = RG.ExpRegressor(RG.RegressorConfig(width=4))
    dis = ST.Disentangler(ST.StyleConfig(width=8))
    crop = np.ascontiguousarray(clip.frames("front")[0][:24, :40])
    ref = np.resize(clip.exp(), (ST.MIN_REF_FRAMES, 79))
    return DS.make_prior(gen, reg, dis, crop, ref)


@pytest.fixture
def killed(monkeypatch):
    """``killed(module, after, fn)``: run ``fn`` with ``module._batch`` (the trainer's batch maker) raising after
    ``after`` calls, so the training stops between two checkpoints as a ``kill -9`` would; ``module._batch`` is
    restored afterwards."""
    def run(module, after: int, fn) -> None:
        calls, real = [0], module._batch

        def dies(*a, **k):
            calls[0] += 1
            if calls[0] > after:
                raise KeyboardInterrupt
            return real(*a, **k)

        with monkeypatch.context() as m:
            m.setattr(module, "_batch", dies)
            with pytest.raises(KeyboardInterrupt):
                fn()
    return run
