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

DFA-NeRF (Section 3.5) renders with a generated head pose per frame, the pose as the view direction in
canonical head space: a checkpoint whose scene knew its head poses also keeps the reference frame's
head-to-world matrix (``head_pose``), and ``iter_frames(pose=...)`` moves the head in front of the recorded
camera, frame by frame (``pose_cameras``). Parts of the condition that audio alone does not give (DFA-NeRF's
eye-blink embedding ``f_e``) keep their default unless a caller supplies them (``replace_parts``).
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


#: what ``render_extra`` saves besides its format: the checkpoint needs all of it to be rendered (and, from a
#: scene that knows its head poses, ``head_pose``: the reference frame's head-to-world, for ``pose_cameras``)
RENDER_KEYS = ("camera", "c2w", "bg", "cond_default")


def render_extra(scene, audio2exp: Audio2Exp | None, audio_slice: tuple[int, int] | None, cond_default: torch.Tensor,
                 ref_frame: int = 0, features: dict | None = None) -> dict:
    """The ``extra`` dict to save with a checkpoint so that ``python -m talklib render`` can use it.

    audio2exp / audio_slice: the audio -> expression network and the slice of the condition it drives
    (a 3DMM-conditioned field); features: for a field with audio conditions (``scene.conditions``), the
    feature networks (``talklib.condition.extract.subset``). The reference frame's camera ``c2w`` (head frame)
    and, when the scene knows it, its head-to-world ``head_pose`` (4, 4) are kept."""
    bg = (scene.bg.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    out = {
        "format": FORMAT,
        "camera": {"focal": float(scene.focal), "cx": float(scene.cx), "cy": float(scene.cy),
                   "H": int(scene.H), "W": int(scene.W)},
        "c2w": scene.c2w[ref_frame].detach().cpu().float(),
        "bg": bg,
        "cond_default": cond_default.detach().cpu().float(),
    }
    if scene.head_pose is not None:
        out["head_pose"] = scene.head_pose[ref_frame].detach().cpu().float()
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
            or cam["H"] % model.cfg.upsample or cam["W"] % model.cfg.upsample
            or ("head_pose" in extra and tuple(extra["head_pose"].shape) != (4, 4))):
        hp = f", head pose {tuple(extra['head_pose'].shape)}" if "head_pose" in extra else ""
        raise UserError(f"checkpoint {ckpt_dir}: its camera ({cam['W']}x{cam['H']}, c2w {tuple(extra['c2w'].shape)}{hp}) "
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


def replace_parts(model: TalkingNeRF, cond: torch.Tensor, parts: dict) -> tuple[torch.Tensor, list[str]]:
    """``cond`` (N, cond_dim) with the columns of the named condition parts replaced, for every frame, by
    ``parts`` (name -> (N, dim) array, e.g. a motion generator's ``f_e``). A part the field does not have is
    ignored; one whose width differs from the field's is a one-line ``UserError`` naming both. Returns the new
    conditions and the names of the ignored parts."""
    layout, out, ignored = dict(model.cfg.cond_parts), cond.clone(), []
    starts = dict(zip(layout, np.cumsum([0, *layout.values()])[:-1].tolist()))
    for name, v in parts.items():
        if name not in layout or name == "audio":
            ignored.append(name)
            continue
        v, d, n = np.asarray(v, np.float32), layout[name], cond.shape[0]
        if v.ndim != 2 or v.shape[1] != d:
            got = f"{v.shape[1]} numbers per frame" if v.ndim == 2 else f"shape {v.shape}, not (frames, numbers)"
            raise UserError(f"the driving {name} has {got} but the checkpoint's field takes {name}:{d}: drive it "
                            f"with {d} numbers per frame, or retrain the field on the generator's {name}")
        if len(v) < n or not np.isfinite(v[:n]).all():
            raise UserError(f"the driving {name} has {len(v)} rows for {n} frames of audio, or numbers that are not "
                            "finite: give one finite row per 40 ms of audio")
        out[:, starts[name]:starts[name] + d] = torch.from_numpy(v[:n]).to(out)
    return out, ignored


def pose_cameras(extra: dict, n: int, yaw: float = 0.0, pitch: float = 0.0, center: torch.Tensor | None = None,
                 pose: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """The camera-to-head matrices of ``n`` frames: (1, 4, 4) without ``pose``, else (n, 4, 4).

    The recorded camera ``c2w_ref`` (head frame of the reference frame) is turned by yaw/pitch around the head
    centre ``center`` (3,) (``orbit``); with a head pose per frame, pose (n, 6) (yaw, pitch, roll in degrees,
    x, y, z in metres, world frame: ``Clip.pose()``'s convention), that camera stays where it is in the world and
    the head moves: c2w_t = inv(pose_matrix(pose_t)) @ head_pose_ref @ orbit(c2w_ref) (DFA-NeRF Section 3.5:
    the pose becomes the view direction in canonical head space). The reference frame's own pose gives the
    recorded view back. A checkpoint without ``head_pose`` cannot take a pose: a one-line ``UserError``."""
    center = torch.zeros(3) if center is None else torch.as_tensor(center)
    c2w = extra["c2w"][None]
    if pose is None:
        return orbit(c2w.to(center.device), yaw, pitch, center)
    from talklib.face3d.camera import pose_matrix

    if "head_pose" not in extra:
        raise UserError("this checkpoint keeps no head pose of its frames, so it cannot render a generated head "
                        "pose: retrain it (python -m talklib train) or render without a pose")
    pose = torch.as_tensor(np.asarray(pose, np.float64))
    if tuple(pose.shape) != (n, 6) or not torch.isfinite(pose).all():
        raise UserError(f"head pose of shape {tuple(pose.shape)} for {n} frames: give ({n}, 6) finite numbers "
                        "(yaw, pitch, roll in degrees, x, y, z in metres)")
    cam = orbit(c2w.double(), yaw, pitch, center.cpu().double())
    return (torch.linalg.inv(pose_matrix(pose)) @ extra["head_pose"].double() @ cam).float().to(center.device)


def iter_frames(model: TalkingNeRF, extra: dict, cond: torch.Tensor, yaw: float = 0.0, pitch: float = 0.0,
                batch: int = 8, progress: bool = True, half: bool = False,
                pose: np.ndarray | torch.Tensor | None = None) -> Iterator[np.ndarray]:
    """Yield (b, H, W, 3) uint8 frames, ``batch`` at a time, for conditions (N, cond_dim) from the recorded
    camera turned by yaw/pitch around the head centre (a tqdm bar over the N frames); with ``pose`` (N, 6),
    the head moves to each frame's pose in front of that camera (``pose_cameras``). Bad arguments are refused
    here, before the first frame renders."""
    check_view(yaw, pitch)
    batch = check_batch(batch)
    c2w = pose_cameras(extra, cond.shape[0], yaw, pitch, model.center.to(cond.device), pose)
    return _frames(model, extra, cond, c2w, batch, progress, half)


@torch.no_grad()
def _frames(model: TalkingNeRF, extra: dict, cond: torch.Tensor, c2w: torch.Tensor, batch: int, progress: bool,
            half: bool) -> Iterator[np.ndarray]:
    dev = cond.device
    cam = extra["camera"]
    bg = extra["bg"].to(dev).float() / 255.0
    with tqdm(total=cond.shape[0], desc="render", unit="frame", disable=not progress) as bar:
        for s in range(0, cond.shape[0], batch):
            c = cond[s:s + batch]
            cw = c2w.expand(c.shape[0], -1, -1) if c2w.shape[0] == 1 else c2w[s:s + batch]
            out = model.render(c, cw, cam["focal"], cam["cx"], cam["cy"],
                               cam["H"], cam["W"], bg, mode="fast", half=half)
            yield (out["rgb"].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            bar.update(c.shape[0])


def render_frames(model: TalkingNeRF, extra: dict, cond: torch.Tensor, yaw: float = 0.0, pitch: float = 0.0,
                  batch: int = 8, progress: bool = True, half: bool = False,
                  pose: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """All of ``iter_frames`` as one (N, H, W, 3) uint8 array (for short clips; stream long ones)."""
    return np.concatenate(list(iter_frames(model, extra, cond, yaw, pitch, batch, progress, half, pose)))
