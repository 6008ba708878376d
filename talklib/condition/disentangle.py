"""NeRF-3DTalker's 3D Prior Aided Audio Disentanglement end to end (Section II.B): audio -> Eq. (1)'s
f_exp-aud and f_exp-style, one 79-d row of each per 40 ms frame.

The three parts notebook 06 trains, chained so that a field conditioned on Eq. (1) can be driven by any wav:

1. Lip-wav (Eq. 2, ``talklib.condition.lipwav``): the identity's mouth crop I_id and the mel of the audio
   -> lip-region images;
2. the 3D prior (``talklib.condition.prior3d``, Deep3DFaceRecon's role): the regressor reads the expression
   off every image: **f_exp-aud** (T, 79);
3. StyleNet and FuseNet (Eq. 3, ``talklib.condition.style``): a reference clip of the speaker (its
   expression sequence) -> the style, fused with f_exp-aud into f_gen-exp (T, 79).

**f_exp-style per frame — a choice the paper leaves open, said plainly.** Eq. (1) conditions the field on
a 79-d f_exp-style beside f_exp-aud, and Section II.B calls speaking style "the movement of facial muscles
influenced by audio", so it moves with the speech; StyleNet's output is one vector per reference clip. Here
the field gets, per frame, ``f_exp-style(t) = f_gen-exp(t) - f_exp-aud(t)``: what FuseNet adds to the speech
movement for the speaker's style at frame t (the brow raise at a phrase start, the smile's level). The two
sum to the expression Eq. (3) trains against the truth; a field given both sees it split into its speech
part and its style part.

``make_prior`` packs the three networks, the identity crop and the style reference into one dict that
notebook 06 stores in the clip folder's feature-network file (``talklib.condition.extract``, key
``"prior"``), so ``python -m talklib render`` recomputes exactly these features from a driving audio
(``prior_from_audio``); ``write_prior`` writes a clip's ``aud_expaud.npy`` / ``aud_expstyle.npy``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from talklib.condition import lipwav as LW
from talklib.condition import prior3d as RG
from talklib.condition import style as ST
from talklib.errors import UserError

FORMAT = "talklib-prior-1"
#: the ``aud_<kind>`` kinds of Eq. (1)'s two audio-made parts
KINDS = ("expaud", "expstyle")
DOCS = {   # talklib.audio.features.write_features' (shape, dtype, meaning) per kind
    "expaud": ("(N, 79)", "float32", "NeRF-3DTalker f_exp-aud: the 3DMM expression read off the Lip-wav images of "
               "the clip's audio (talklib.condition.disentangle, notebook 06)"),
    "expstyle": ("(N, 79)", "float32", "NeRF-3DTalker f_exp-style per frame: FuseNet's f_gen-exp minus f_exp-aud "
                 "(talklib.condition.disentangle, notebook 06)"),
}


def _state(m) -> dict:
    return {k: v.detach().cpu() for k, v in m.state_dict().items()}


def make_prior(gen: LW.LipWavGenerator, reg: RG.ExpRegressor, dis: ST.Disentangler, id_crop: np.ndarray,
               style_ref: np.ndarray) -> dict:
    """The disentanglement module as a plain dict (``torch.load(weights_only=True)``-safe): the three
    networks, the identity's mouth crop (h, w, 3) uint8 (the paper's I_id) and the reference clip's
    expression (T_ref, 79) StyleNet reads the speaker's style from."""
    id_crop = np.asarray(id_crop)
    if id_crop.shape != (gen.cfg.crop_h, gen.cfg.crop_w, 3) or id_crop.dtype != np.uint8:
        raise UserError(f"the identity crop has shape {id_crop.shape} ({id_crop.dtype}), the Lip-wav generator draws "
                        f"{gen.cfg.crop_h}x{gen.cfg.crop_w} RGB uint8 crops: give a crop of that size")
    ref = ST.check_reference(style_ref, "the style reference clip")
    return {"format": FORMAT,
            "lipwav": {"config": dataclasses.asdict(gen.cfg), "state": _state(gen)},
            "regressor": {"config": dataclasses.asdict(reg.cfg), "state": _state(reg)},
            "style_fuse": {"config": dataclasses.asdict(dis.cfg), "state": _state(dis)},
            "id_crop": torch.from_numpy(np.ascontiguousarray(id_crop)), "style_ref": torch.from_numpy(ref.copy())}


def networks_of(prior: dict, device: torch.device | str = "cpu"):
    """(generator, regressor, disentangler, id_crop, style_ref) rebuilt from ``make_prior``'s dict; a dict
    that is not one is a one-line error."""
    fix = "run notebook 06 again to rewrite the clip folder's feature networks (python -m talklib reproduce --only 06)"
    if not isinstance(prior, dict) or prior.get("format") != FORMAT:
        raise UserError(f"the stored disentanglement module is not a talklib one (format "
                        f"{prior.get('format') if isinstance(prior, dict) else None!r}): {fix}")
    try:
        gen = LW.LipWavGenerator(LW.LipWavConfig(**prior["lipwav"]["config"]))
        gen.load_state_dict(prior["lipwav"]["state"])
        reg = RG.ExpRegressor(RG.RegressorConfig(**prior["regressor"]["config"]))
        reg.load_state_dict(prior["regressor"]["state"])
        dis = ST.Disentangler(ST.StyleConfig(**prior["style_fuse"]["config"]))
        dis.load_state_dict(prior["style_fuse"]["state"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise UserError(f"the stored disentanglement module does not fit talklib's networks: {fix}") from None
    nets = [m.to(device).eval() for m in (gen, reg, dis)]
    return (*nets, np.asarray(prior["id_crop"]), np.asarray(prior["style_ref"], np.float32))


def prior_features(gen: LW.LipWavGenerator, reg: RG.ExpRegressor, dis: ST.Disentangler, id_crop: np.ndarray,
                   style_ref: np.ndarray, mel: np.ndarray) -> dict[str, np.ndarray]:
    """A mel stream (2T, 80) -> ``{"expaud": f_exp-aud (T, 79), "expstyle": f_exp-style (T, 79)}``, the latter
    per frame as f_gen-exp - f_exp-aud (module docstring)."""
    n = len(mel) // 2
    crops = LW.generate(gen, id_crop, mel, n)                     # Lip-wav images (Eq. 2's generator)
    f_aud = RG.predict(reg, crops)                                # 3D prior extraction: f_exp-aud
    f_gen, _ = ST.fuse(dis, f_aud, style_ref)                     # StyleNet + FuseNet (Eq. 3's f_gen-exp)
    return {"expaud": f_aud.astype(np.float32), "expstyle": (f_gen - f_aud).astype(np.float32)}


def prior_from_audio(prior: dict, audio: np.ndarray, n_frames: int) -> dict[str, np.ndarray]:
    """16 kHz mono audio (already fitted to ``n_frames`` frames) -> ``prior_features`` with the stored module."""
    from talklib.sync.crops import clip_mel

    return prior_features(*networks_of(prior), clip_mel(np.asarray(audio, np.float32), n_frames))


def write_prior(clip_dir: str | Path, feats: dict[str, np.ndarray]) -> list[Path]:
    """Write a clip's ``aud_expaud.npy`` and ``aud_expstyle.npy`` atomically, described in its dataset.json."""
    from talklib.audio.features import write_features

    if set(feats) != set(KINDS):
        raise ValueError(f"write_prior takes exactly {KINDS}, got {sorted(feats)}")
    return write_features(clip_dir, feats, docs=DOCS)
