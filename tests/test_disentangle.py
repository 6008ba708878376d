"""NeRF-3DTalker's disentanglement module end to end (``talklib.condition.disentangle``) and its prior parts
in the conditions stage: from a wav to f_exp-aud / f_exp-style exactly as the clip folder stores them, and
one-line errors for what is missing or malformed."""

import shutil

import numpy as np
import pytest

from talklib.condition import disentangle as DS
from talklib.condition import style as ST
from talklib.condition.audionet import ConditionConfig
from talklib.condition.extract import BUNDLE_NAME, features_from_audio, load_bundle, subset
from talklib.condition.inputs import config_for, from_clip
from talklib.condition.spec import parse
from talklib.data.dataset import load_clip
from talklib.errors import UserError


def test_prior_parts_pack_like_3dmm_parts_before_the_audio():
    parts = parse("f_illu,mfcc,f_exp_style:5,f_exp_aud:12")
    assert [str(p) for p in parts] == ["f_exp_style:5", "f_exp_aud:12", "mfcc", "f_illu"]
    assert ConditionConfig("f_exp_aud:12,f_exp_style:12,f_illu").raw_layout() == {
        "f_exp_aud": 12, "f_exp_style": 12, "f_illu": 27}
    assert all(p.is_prior and p.from_audio and not p.is_audio for p in parts[:2])


def test_the_style_part_is_what_fusenet_adds_to_the_speech_part(featured_corpus):
    prior = load_bundle(featured_corpus.clip(split="train").path / BUNDLE_NAME)["prior"]
    clip = featured_corpus.clip(split="testA")
    gen, reg, dis, crop, ref = DS.networks_of(prior)
    out = DS.prior_from_audio(prior, clip.audio(), clip.n_frames)
    assert out["expaud"].shape == out["expstyle"].shape == (clip.n_frames, 79)
    f_gen, _ = ST.fuse(dis, out["expaud"], ref)
    np.testing.assert_allclose(out["expaud"] + out["expstyle"], f_gen, atol=1e-5)


def test_conditions_from_a_wav_match_those_packed_from_the_clip_folder(featured_corpus):
    clip = featured_corpus.clip(split="testA")
    cfg = config_for(clip, "f_exp_aud:12,f_exp_style:12,mfcc,f_illu", audio_dim=4, frames=2)
    stored = from_clip(clip, cfg)
    bundle = load_bundle(clip.path / BUNDLE_NAME)
    feats = features_from_audio(clip.audio(), cfg.parts, subset(bundle, cfg.parts), n_frames=clip.n_frames)
    np.testing.assert_allclose(stored[:, :12], feats["expaud"][:, :12], atol=1e-5)
    np.testing.assert_allclose(stored[:, 12:24], feats["expstyle"][:, :12], atol=1e-5)


def test_missing_or_malformed_prior_is_a_one_line_error(featured_corpus, tmp_path):
    dst = tmp_path / "clip"
    shutil.copytree(featured_corpus.clip(split="train").path, dst)
    clip = load_clip(dst)
    (dst / "aud_expstyle.npy").unlink()
    with pytest.raises(UserError, match="aud_expstyle.npy.*notebook 06"):
        config_for(clip, "f_exp_aud:12,f_exp_style:12,f_illu")
    np.save(dst / "aud_expaud.npy", np.zeros((clip.n_frames, 12), np.float32))
    with pytest.raises(UserError, match=r"expects \(\d+, 79\)"):
        from_clip(clip, config_for(clip, "f_exp_aud:12,f_illu"))
    b = load_bundle(dst / BUNDLE_NAME)
    b.pop("prior")
    with pytest.raises(UserError, match="lacks prior: run notebook 06 again"):
        subset(b, parse("f_exp_aud,f_illu"))


def test_make_prior_refuses_a_wrong_crop_or_a_short_reference(featured_corpus):
    prior = load_bundle(featured_corpus.clip(split="train").path / BUNDLE_NAME)["prior"]
    gen, reg, dis, crop, ref = DS.networks_of(prior)
    with pytest.raises(UserError, match="identity crop has shape"):
        DS.make_prior(gen, reg, dis, crop[:10], ref)
    with pytest.raises(UserError, match="StyleNet needs at least"):
        DS.make_prior(gen, reg, dis, crop, ref[:10])
    with pytest.raises(UserError, match="not a talklib one"):
        DS.networks_of({"format": "other"})
