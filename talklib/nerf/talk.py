"""From a trained NeRF checkpoint and a driving audio to talking-head frames, at any view.

A checkpoint folder holds ``nerf.pt`` (``talklib.nerf.train.save_checkpoint``) whose ``extra`` makes
it self-contained for rendering: the camera (intrinsics, the recorded front camera), the background,
the default condition vector (e.g. the speaker's f_illu and mean expression), and what turns audio
into conditions. That is one of two things:
- a field conditioned on 3DMM expression (notebook 03): the audio -> expression network and the slice
  of the condition it drives (``audio_slice``, ``audio2exp``);
- a field conditioned on audio features (``talklib.condition``, notebook 05, ``python -m talklib train``)
  or on NeRF-3DTalker's disentangled parts f_exp-aud / f_exp-style (notebook 06): the networks that compute
  those from a wav (``features``, ``talklib.condition.extract``); each frame is packed exactly as in
  training (``talklib.condition.inputs.pack``).
``iter_frames`` yields the frames batch by batch, so a long render can stream them to the video
encoder (``talklib.data.video.write_video`` takes an iterable) with flat memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from talklib.errors import UserError
from talklib.nerf.audio2exp import Audio2Exp, mel_windows, predict
from talklib.nerf.model import TalkingNeRF
from talklib.nerf.rays import orbit
from talklib.nerf.train import load_checkpoint, model_from_checkpoint

FORMAT = "talklib-nerf-1"
YAW_LIMIT = 45.0     # degrees either side of the recorded view
PITCH_LIMIT = 30.0


#: what ``render_extra`` saves besides its format: the checkpoint needs all of it to be rendered
RENDER_KEYS = ("camera", "c2w", "bg", "cond_default")


def render_extra(scene, audio2exp: Audio2Exp | None, audio_slice: tuple[int, int] | None, cond_default: torch.Tensor,
                 ref_frame: int = 0, features: dict | None = None) -> dict:
    """The ``extra`` dict to save with a checkpoint so that ``python -m talklib render`` can use it.

    audio2exp / audio_slice: the audio -> expression network and the slice of the condition it drives
    (a 3DMM-conditioned field); features: for a field with audio conditions (``scene.conditions``), the
    feature networks (``talklib.condition.extract.subset``)."""
    bg = (scene.bg.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    out = {
        "format": FORMAT,
        "camera": {"focal": float(scene.focal), "cx": float(scene.cx), "cy": float(scene.cy),
                   "H": int(scene.H), "W": int(scene.W)},
        "c2w": scene.c2w[ref_frame].detach().cpu().float(),
        "bg": bg,
        "cond_default": cond_default.detach().cpu().float(),
    }
    if audio2exp is not None:
        out["audio_slice"] = [int(audio_slice[0]), int(audio_slice[1])]
        out["audio2exp"] = {"config": dict(audio2exp.cfg),
                            "state": {k: v.detach().cpu() for k, v in audio2exp.state_dict().items()}}
    if features is not None:
        out["features"] = features
    return out


def feature_driven(model: TalkingNeRF) -> bool:
    """Whether the field's audio-driven parts are computed by feature networks (audio windows or the prior
    parts f_exp_aud / f_exp_style), not by an audio -> expression network."""
    from talklib.condition.spec import CONDITIONS

    return model.conditioner is not None or any(
        n in CONDITIONS and CONDITIONS[n].source == "prior" for n in model.cfg.cond_parts)


def load_talker(ckpt_dir: str | Path, device: torch.device | str = "cpu") -> tuple[TalkingNeRF, Audio2Exp | None, dict]:
    """The NeRF, its audio -> expression network (None for an audio-conditioned field) and the render
    settings of a checkpoint folder."""
    blob = load_checkpoint(ckpt_dir, map_location="cpu")
    extra = blob.get("extra") or {}
    model = model_from_checkpoint(blob)
    audio_cond = feature_driven(model)
    need = RENDER_KEYS + (("features",) if audio_cond else ("audio_slice", "audio2exp"))
    missing = [k for k in need if k not in extra]
    if extra.get("format") != FORMAT or missing:
        raise UserError(f"checkpoint {ckpt_dir} holds a NeRF but not what rendering needs (format "
                        f"{extra.get('format')!r}, expected {FORMAT!r}; missing: {', '.join(missing) or 'none'}): use "
                        "one that `python -m talklib train` or notebook 03 (RUN/checkpoints/nerf03) saved, or train "
                        "with `benchmarks/render.py --data CLIP --ckpt DIR` (not with --toy: it has no audio)")
    if extra["cond_default"].shape[0] != model.spec.dim:
        raise UserError(f"checkpoint {ckpt_dir} mixes parts of different configurations (condition of "
                        f"{extra['cond_default'].shape[0]} numbers, field expects {model.spec.dim}): retrain it")
    a2e = None
    if not audio_cond:
        a_cfg = extra["audio2exp"]["config"]
        a2e = Audio2Exp(**a_cfg)
        s0, s1 = extra["audio_slice"]
        if a_cfg["out_dim"] != s1 - s0:
            raise UserError(f"checkpoint {ckpt_dir} mixes parts of different configurations (audio network of "
                            f"{a_cfg['out_dim']} numbers drives a slice of {s1 - s0}): retrain it")
        try:
            a2e.load_state_dict(extra["audio2exp"]["state"])
        except RuntimeError:
            raise UserError(f"checkpoint {ckpt_dir}: its audio network does not fit its configuration: retrain it") from None
        a2e = a2e.to(device).eval()
    cam = extra["camera"]
    if (tuple(extra["c2w"].shape) != (4, 4) or tuple(extra["bg"].shape) != (cam["H"], cam["W"], 3)
            or cam["H"] % model.cfg.upsample or cam["W"] % model.cfg.upsample):
        raise UserError(f"checkpoint {ckpt_dir}: its camera ({cam['W']}x{cam['H']}, c2w {tuple(extra['c2w'].shape)}) "
                        f"and background {tuple(extra['bg'].shape)} do not fit together: the file is damaged, retrain")
    return model.to(device).eval(), a2e, extra


def check_view(yaw: float, pitch: float) -> None:
    if not (abs(yaw) <= YAW_LIMIT):
        raise UserError(f"yaw {yaw} degrees is out of range: use -{YAW_LIMIT:g}..{YAW_LIMIT:g} (0 = recorded view)")
    if not (abs(pitch) <= PITCH_LIMIT):
        raise UserError(f"pitch {pitch} degrees is out of range: use -{PITCH_LIMIT:g}..{PITCH_LIMIT:g} (0 = recorded view)")


@torch.no_grad()
def conditions_from_audio(a2e: Audio2Exp | None, extra: dict, audio: np.ndarray,
                          model: TalkingNeRF | None = None) -> torch.Tensor:
    """(N, cond_dim) conditions, one per 40 ms of audio: the defaults with the audio-driven part filled in
    (the predicted expression slice, or, for an audio-conditioned ``model``, the audio windows packed as
    in training)."""
    if a2e is None:
        from talklib.condition.audionet import ConditionConfig
        from talklib.condition.extract import features_from_audio
        from talklib.condition.inputs import audio_window, pack
        from talklib.condition.spec import Part

        if model is None or not feature_driven(model):
            raise ValueError("an audio-conditioned checkpoint needs its model to pack the conditions")
        ccfg = (ConditionConfig(**model.cfg.conditions) if model.cfg.conditions else
                ConditionConfig.from_parts([Part(k, d) for k, d in model.cfg.cond_parts.items()]))
        feats = features_from_audio(audio, ccfg.parts, extra["features"])
        win = audio_window(feats, ccfg.parts) if ccfg.audio_channels else None
        n = win.shape[0] if win is not None else min(len(feats[p.cond.feature]) for p in ccfg.parts if p.is_prior)
        default = extra["cond_default"].numpy()
        priors = {p.name: feats[p.cond.feature][:n, :p.dim] for p in ccfg.parts if p.is_prior}
        values, s = {}, 0
        for name, d in ccfg.raw_layout().items():
            values[name] = priors.get(name, np.broadcast_to(default[s:s + d], (n, d)))
            s += d
        dev = model.center.device
        return torch.from_numpy(pack(ccfg, values, win)).to(dev)
    win = mel_windows(audio)
    dev = next(a2e.parameters()).device
    exp = predict(a2e, win)
    cond = extra["cond_default"].to(dev).expand(exp.shape[0], -1).clone()
    s0, s1 = extra["audio_slice"]
    cond[:, s0:s1] = exp
    return cond


def check_batch(batch: int) -> int:
    """Frames per render call, checked: a positive integer."""
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise UserError(f"batch {batch} is not a positive number of frames: use e.g. 8 (fewer if memory is short)")
    return int(batch)


@torch.no_grad()
def iter_frames(model: TalkingNeRF, extra: dict, cond: torch.Tensor, yaw: float = 0.0, pitch: float = 0.0,
                batch: int = 8, progress: bool = True, half: bool = False) -> Iterator[np.ndarray]:
    """Yield (b, H, W, 3) uint8 frames, ``batch`` at a time, for conditions (N, cond_dim) from the recorded
    camera turned by yaw/pitch around the head centre (a tqdm bar over the N frames)."""
    check_view(yaw, pitch)
    batch = check_batch(batch)
    dev = cond.device
    cam = extra["camera"]
    c2w = orbit(extra["c2w"][None].to(dev), yaw, pitch, model.center.to(dev))
    bg = extra["bg"].to(dev).float() / 255.0
    with tqdm(total=cond.shape[0], desc="render", unit="frame", disable=not progress) as bar:
        for s in range(0, cond.shape[0], batch):
            c = cond[s:s + batch]
            out = model.render(c, c2w.expand(c.shape[0], -1, -1), cam["focal"], cam["cx"], cam["cy"],
                               cam["H"], cam["W"], bg, mode="fast", half=half)
            yield (out["rgb"].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            bar.update(c.shape[0])


def render_frames(model: TalkingNeRF, extra: dict, cond: torch.Tensor, yaw: float = 0.0, pitch: float = 0.0,
                  batch: int = 8, progress: bool = True, half: bool = False) -> np.ndarray:
    """All of ``iter_frames`` as one (N, H, W, 3) uint8 array (for short clips; stream long ones)."""
    return np.concatenate(list(iter_frames(model, extra, cond, yaw, pitch, batch, progress, half)))
