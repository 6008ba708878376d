"""Packing conditions: a clip's (or a driving audio's) values -> the per-frame vector the NeRF stores.

One function packs for training and for rendering (``pack``), so the two cannot drift apart. The vector
of frame i is ``[3DMM parts | audio windows of frames i-4 ... i+3 | f_illu]`` (``ConditionConfig.
raw_layout``); the ``Conditioner`` inside the model turns the audio windows into the code.
Every audio part becomes a window of 16 steps at 50 Hz centred on its frame (AD-NeRF's aud.npy layout):
features stored as windows (``deepspeech``, ``mfcc``, ``mel``) as they are, per-frame codes (SpeechSplit's
``a_c, a_r, a_p``, DFA-NeRF's ``f_a``) repeated onto the 50 Hz steps first; the parts are concatenated
channel-wise.
"""

from __future__ import annotations

import numpy as np

from talklib.audio.features import STREAM_HZ, FPS, windows
from talklib.condition.audionet import WINDOW, ConditionConfig
from talklib.condition.spec import Part, parse
from talklib.errors import UserError


def audio_window(feats: dict[str, np.ndarray], parts: list[Part], n: int | None = None) -> np.ndarray:
    """Audio parts' windows, channel-concatenated: (N, 16, channels). ``feats``: ``aud_<kind>`` arrays by kind."""
    out = []
    for p in parts:
        if not p.is_audio:
            continue
        c = p.cond
        a = np.asarray(feats[c.feature], np.float32)
        if not c.windowed:
            a = a.reshape(a.shape[0], -1)
            a = a[:, c.cols[0]:c.cols[1]] if c.cols else a
            a = windows(np.repeat(a, STREAM_HZ // FPS, axis=0), WINDOW)
        if a.ndim != 3 or a.shape[1] != WINDOW or a.shape[2] != p.dim:
            raise UserError(f"audio feature aud_{c.feature}.npy has shape {a.shape}, condition {p.name} expects "
                            f"{p.dim} numbers per step: recompute the features ({c.made_by})")
        out.append(a)
    win = np.concatenate(out, axis=2)
    return win if n is None else win[:n]


def neighbours(win: np.ndarray, frames: int) -> np.ndarray:
    """Windows (N, 16, C) -> the windows of frames i - K/2 ... i + K/2 - 1 of each frame, flattened
    (N, K * 16 * C) (edge frames repeated: AD-NeRF pads with zeros)."""
    n = win.shape[0]
    idx = np.clip(np.arange(n)[:, None] + np.arange(-(frames // 2), frames - frames // 2)[None, :], 0, n - 1)
    return np.ascontiguousarray(win[idx].reshape(n, -1))


def pack(cfg: ConditionConfig, values: dict[str, np.ndarray], audio: np.ndarray | None) -> np.ndarray:
    """The per-frame vectors (N, raw_dim): 3DMM ``values`` by name (N, dim) and the audio window (N, 16, C)."""
    out = []
    for name, d in cfg.raw_layout().items():
        if name == "audio":
            out.append(neighbours(audio, cfg.frames))
        else:
            v = np.asarray(values[name], np.float32)
            out.append(v.reshape(v.shape[0], -1)[:, :d])
    n = min(len(x) for x in out)
    return np.concatenate([x[:n] for x in out], axis=1).astype(np.float32)


def clip_3dmm(clip, name: str) -> np.ndarray:
    """A 3DMM part of a clip, one row per frame (N, dim): ground truth of the synthetic speaker (the
    fitted codes of a real video). f_illu is rotated into the head frame, where the field's normals live."""
    n = clip.n_frames
    if name == "f_exp":
        return np.asarray(clip.exp(), np.float32)
    if name == "pose":
        return np.asarray(clip.pose(), np.float32).reshape(n, -1)
    if name == "f_id":
        return np.repeat(np.asarray(clip.id_coeffs(), np.float32)[None], n, 0)
    if name == "f_alb":
        return np.repeat(np.asarray(clip.alb_coeffs(), np.float32)[None], n, 0)
    if name == "f_illu":
        import torch

        from talklib.face3d.model import rotate_sh

        rot = torch.from_numpy(clip.head_pose()[:, :3, :3].astype(np.float64))
        return rotate_sh(torch.from_numpy(clip.illu().astype(np.float64)), rot).numpy().astype(np.float32)
    raise UserError(f"{name} is not a 3DMM condition")


def clip_prior(clip, part: Part) -> np.ndarray:
    """A prior or motion part of a clip (``f_exp_aud``, ``f_exp_style``: (N, 79); ``f_e``: (N, k)), one row per
    frame, from its ``aud_<kind>.npy`` (``talklib.condition.disentangle.write_prior`` writes the prior ones,
    notebook 08 ``aud_eyes.npy``); a file of another shape is a one-line error."""
    a = np.asarray(clip.audio_features(part.cond.feature), np.float32)
    n, width, motion = clip.n_frames, (part.dim if part.is_motion else part.cond.dim), part.is_motion
    if a.ndim != 2 or len(a) < n or (a.shape[1] < width if motion else a.shape[1] != width):
        fewer = f"write {part.name}:{a.shape[1]} or fewer, or " if motion and a.ndim == 2 and 0 < a.shape[1] < width else ""
        raise UserError(f"aud_{part.cond.feature}.npy of {clip.path} has shape {a.shape}, condition {part} expects "
                        f"({n}, {'>= ' if motion else ''}{width}): {fewer}recompute it with {part.cond.made_by}")
    return a[:n]


def require_features(clip, parts: list[Part]) -> None:
    """Refuse, in one line naming the command that writes it, an ``aud_<kind>.npy`` the audio, prior and
    motion parts need and the clip folder lacks (checked before anything is read or written)."""
    for p in parts:
        f = clip.path / f"aud_{p.cond.feature}.npy"
        if p.from_file and not f.is_file():
            raise UserError(f"condition {p.name} needs {f.name}, which {clip.path} does not have: "
                            f"make it with {p.cond.made_by}")


def clip_features(clip, parts: list[Part]) -> dict[str, np.ndarray]:
    """The ``aud_<kind>`` arrays the audio parts need, read from the clip folder (``require_features``)."""
    require_features(clip, parts)
    return {p.cond.feature: clip.audio_features(p.cond.feature) for p in parts if p.is_audio}


def config_for(clip, conditions, **sizes) -> ConditionConfig:
    """The ``ConditionConfig`` of ``conditions`` (a ``spec.parse`` list, its text, or a config, returned as
    it is) on this clip: audio channel counts read from its features; ``sizes``: ``audio_dim``, ``frames``."""
    if isinstance(conditions, ConditionConfig):
        return conditions
    parts = parse(conditions)
    require_features(clip, parts)
    return ConditionConfig.from_parts(audio_dims(clip, parts), **sizes)


def audio_dims(clip, parts: list[Part]) -> list[Part]:
    """Parts with the channel counts the clip's features really have: an audio code's width (e.g. f_a's), and
    a motion part given without a size (``f_e``) takes its file's width (at most the condition's maximum)."""
    out = []
    for p in parts:
        if p.is_audio and not p.cond.windowed and not p.cond.cols:
            a = clip.audio_features(p.cond.feature)
            out.append(Part(p.name, int(np.prod(a.shape[1:]))))
        elif p.is_motion and p.dim == p.cond.dim:
            a = clip.audio_features(p.cond.feature)
            out.append(Part(p.name, min(p.dim, int(a.shape[-1])) if a.ndim == 2 else p.dim))
        else:
            out.append(p)
    return out


def from_clip(clip, cfg: ConditionConfig, n: int | None = None) -> np.ndarray:
    """The per-frame condition vectors (N, raw_dim) of a clip (its first n frames)."""
    parts = cfg.parts
    values = {p.name: clip_prior(clip, p) if p.from_file else clip_3dmm(clip, p.name) for p in parts if not p.is_audio}
    audio = audio_window(clip_features(clip, parts), parts) if cfg.audio_channels else None
    raw = pack(cfg, values, audio)
    return raw if n is None else raw[:n]
