"""``python -m talklib render --standardize SPACE``: the rendered frames pass through a saved standardized space
(NeRF-3DTalker Section II.D), from the layer above ``talklib.nerf`` (``talklib.codebook.command``, composed into the
command by ``talklib.render``)."""

import numpy as np
import pytest
import torch

from talklib.cli import main
from talklib.codebook import au as AU
from talklib.codebook import space as SP


def _space(path, size: int, **kw):
    """An untrained tiny standardized space for size x size frames, saved with ``save_space``."""
    au = AU.AUEncoderConfig(image_size=size, width=4, au_dim=4, hidden=8)
    torch.manual_seed(0)
    model = SP.StandardizedSpace(SP.SpaceConfig(image_size=size, width=4, au=au, au_codes=8, glo_codes=8, glo_dim=4,
                                                n_down=2, **kw))
    SP.save_space(model, path)
    return model


def test_render_through_the_space_writes_its_frames_one_per_40ms(ckpt, wav, tmp_path, capsys):
    from talklib.data.video import read_video, read_video_audio

    space = _space(tmp_path / "space.pt", 16)
    plain, std = tmp_path / "plain.mp4", tmp_path / "std.mp4"
    base = ["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--device", "cpu"]
    assert main(base + ["--out", str(plain)]) == 0
    assert main(base + ["--out", str(std), "--standardize", str(tmp_path / "space.pt"), "--batch", "2"]) == 0
    assert "standardized space" in capsys.readouterr().out
    frames, fps = read_video(std)
    assert frames.shape == (5, 16, 16, 3) and fps == pytest.approx(25)   # 0.2 s of audio: 5 frames of 40 ms
    assert read_video_audio(std) is not None
    rendered, _ = read_video(plain)
    # what was encoded is the space's output of the render, not the render (up to the codec's loss)
    expect = SP.standardize(space, rendered)
    assert np.abs(frames.astype(float) - expect).mean() < np.abs(frames.astype(float) - rendered).mean()


def test_every_ablation_of_the_space_renders(ckpt, wav, tmp_path):
    for kw in ({"use_au": False}, {"use_global": False}):
        _space(tmp_path / "space.pt", 16, **kw)
        out = tmp_path / "t.mp4"
        assert main(["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(out), "--device", "cpu",
                     "--standardize", str(tmp_path / "space.pt"), "--force"]) == 0


def test_a_space_of_another_frame_size_is_one_line_naming_both(ckpt, wav, tmp_path, capsys):
    _space(tmp_path / "space32.pt", 32)
    out = tmp_path / "t.mp4"
    assert main(["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(out), "--device", "cpu",
                 "--standardize", str(tmp_path / "space32.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "32x32" in err and "16x16" in err, err
    assert not out.exists() and not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("case,needle", [("missing", "no standardized space at"), ("other_kind", "not a standardized space")])
def test_a_missing_or_foreign_space_is_one_line(ckpt, wav, tmp_path, capsys, case, needle):
    path = tmp_path / "space.pt"
    if case == "other_kind":
        AU.save_au_encoder(AU.AUEncoder(AU.AUEncoderConfig(image_size=16, width=4)), path)
    out = tmp_path / "t.mp4"
    assert main(["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(out), "--device", "cpu",
                 "--standardize", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not out.exists()


def test_render_is_registered_from_the_top_layer():
    """talklib.nerf may not import talklib.codebook or talklib.motion (tests/test_layering.py): the command that
    composes their options comes from the top layer."""
    from talklib.cli import COMMANDS, build_parser

    assert COMMANDS["render"][0] == "talklib.render"
    args = build_parser().parse_args(["render", "--checkpoint", "c", "--audio", "a.wav", "--out", "o.mp4"])
    assert args.standardize is None and args.motion is None and args.motion_seed is None
    assert args.yaw == 0.0 and args.batch == 8   # nerf.command's options, kept


# ---- the library pieces notebook 07 added to talklib.codebook --------------------------------------------------

def test_augmented_faces_stay_images_and_training_with_them_resumes_exactly(tmp_path):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16)
    y = AU.augment_faces(x, gen)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0 and not torch.equal(x, y)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (12, 10))
    cfg = AU.AUEncoderConfig(image_size=16, width=4, au_dim=4, hidden=8)
    kw = dict(batch=4, seed=3, progress=False, augment=True)
    torch.manual_seed(0)
    whole = AU.AUEncoder(cfg)
    h = AU.train_au_encoder(whole, frames, labels, 6, **kw)
    ck = tmp_path / "au_state.pt"
    torch.manual_seed(0)
    cut = AU.AUEncoder(cfg)
    calls, real = [0], AU._batch

    def dies(*a, **k):          # a kill -9 after the checkpoint of step 3
        calls[0] += 1
        if calls[0] > 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    AU._batch = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            AU.train_au_encoder(cut, frames, labels, 6, ckpt=ck, ckpt_every=3, **kw)
    finally:
        AU._batch = real
    torch.manual_seed(5)        # another initialisation: weights, optimiser and both generators come from the file
    again = AU.AUEncoder(cfg)
    assert AU.train_au_encoder(again, frames, labels, 6, ckpt=ck, ckpt_every=3, **kw) == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)


def test_the_au_encoder_ignores_a_global_change_of_light():
    torch.manual_seed(0)
    enc = AU.AUEncoder(AU.AUEncoderConfig(image_size=16, width=4, au_dim=4, hidden=8))
    x = 0.2 + 0.5 * torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(enc(x), enc(0.1 + 1.3 * x), rtol=1e-4, atol=1e-4)   # a gain and an offset of the light


def test_au_scores_and_code_usage():
    pred = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    s = AU.au_scores(pred, true)
    np.testing.assert_allclose(s["acc"], [0.5, 0.75, 1.0])
    np.testing.assert_allclose(s["f1"][:2], [0.5, 2 / 3])        # 2 TP / (2 TP + FP + FN)
    assert np.isnan(s["f1"][2])                                    # never on in either: F1 says nothing
    np.testing.assert_allclose(s["pred_rate"], [0.5, 0.5, 0.0])
    torch.manual_seed(0)
    model = SP.StandardizedSpace(SP.SpaceConfig(image_size=16, width=4, au_codes=8, glo_codes=8, glo_dim=4, n_down=2,
                                                au=AU.AUEncoderConfig(image_size=16, width=4, au_dim=4, hidden=8)))
    frames = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    u = SP.code_usage(model, frames)
    assert set(u) == {"au", "glo"}
    assert u["au"]["counts"].sum() == 4 * 10 and u["glo"]["counts"].sum() == 4 * 4 * 4   # 10 AUs, a 4x4 grid
    for v in u.values():
        assert v["used"] == int((v["counts"] > 0).sum()) and 1.0 <= v["perplexity"] <= v["used"] + 1e-9
