"""Every condition a field can take, named and sized once, and the parser of a user's list.

A condition list reads like ``f_exp:12,f_illu`` or ``a_content,a_rhythm,a_pitch``: 3DMM parts come from
the clip's ground truth (the fitted codes of a real video), audio parts from the ``aud_<kind>.npy``
features of the clip folder (``talklib.audio.features`` writes mel and MFCC; notebook 02 writes the
learned ones) or, when rendering, from the driving audio (``talklib.condition.extract``).
Prior parts (``f_exp_aud``, ``f_exp_style``: NeRF-3DTalker's Eq. (1), ``talklib.condition.disentangle``)
are per-frame 3DMM-space vectors made from the audio: read from ``aud_expaud.npy`` / ``aud_expstyle.npy``
(notebook 06 writes them) or, when rendering, computed from the driving audio; they are packed like 3DMM
parts, one row per frame, with no audio window.
Motion parts (``f_e``: DFA-NeRF's eye-blink embedding, f_c = [f_a, f_e] of Section 3.5) are packed and read
the same way (``aud_eyes.npy``, (N, k): notebook 08 writes it), but a wav alone does not give them: when
rendering they come from a motion generator (``render --motion CKPT``, ``talklib.motion.command``) or,
without one, keep the checkpoint's default (the training mean: eyes open, no blink). ``f_e`` without a size
takes every number the clip's file has (at most 64); ``f_e:k`` the first k.
The packed order is fixed, whatever order the user wrote: 3DMM, prior and motion parts, then the audio
parts (one audio window of all of them, channel after channel), then ``f_illu`` last (the field applies SH
lighting linearly, ``talklib.nerf.field``).
"""

from __future__ import annotations

from dataclasses import dataclass

from talklib.errors import UserError


@dataclass(frozen=True)
class Condition:
    name: str
    source: str          # "3dmm" (clip ground truth / fitted codes), "audio" (aud_<feature>.npy, windowed),
    #                      "prior" (aud_<feature>.npy, one 3DMM-space row per frame, made from the audio) or
    #                      "motion" (aud_<feature>.npy, one row per frame; rendering: a motion generator's)
    dim: int             # numbers per frame (audio: channels per window step)
    feature: str         # 3dmm: the clip accessor; audio: the aud_<feature>.npy kind
    windowed: bool = False   # audio feature stored as (N, 16, C) windows (else per frame (N, C))
    cols: tuple[int, int] | None = None  # columns of a per-frame feature (SpeechSplit's a_c | a_r | a_p)
    sizable: bool = False    # "name:k" keeps the first k numbers
    made_by: str = ""        # what writes the feature (for the error when it is missing)
    meaning: str = ""


_NB02 = "notebook 02 (python -m talklib reproduce --only 02 -p data_dir=DATA)"
_FEATS = "python -m talklib audio-features CLIP/aud.wav --out CLIP (or notebook 02)"
_NB08 = "notebook 08 (python -m talklib reproduce --only 08 -p data_dir=DATA), which writes it for the training clip"
_NB06 = "notebook 06 (python -m talklib reproduce --only 06 -p data_dir=DATA), which writes them for the training and testA clips"

#: content | rhythm | pitch widths of ``aud_ssplit.npy`` (SpeechSplit's bottlenecks, ``SpeechSplitConfig.code_dims``)
SSPLIT_DIMS = (16, 2, 64)
_c, _r, _p = SSPLIT_DIMS

CONDITIONS: dict[str, Condition] = {c.name: c for c in [
    Condition("f_exp", "3dmm", 79, "exp", sizable=True, meaning="expression (first k: the named ones, EXP_NAMES)"),
    Condition("f_id", "3dmm", 100, "id", meaning="identity shape"),
    Condition("f_alb", "3dmm", 100, "alb", meaning="albedo"),
    Condition("pose", "3dmm", 6, "pose", meaning="head rotation (axis-angle) and translation"),
    Condition("f_illu", "3dmm", 27, "illu", meaning="SH lighting, 9 x RGB, in the head frame (always packed last)"),
    Condition("a_content", "audio", _c, "ssplit", cols=(0, _c), made_by=_NB02, meaning="SpeechSplit content code A_c"),
    Condition("a_rhythm", "audio", _r, "ssplit", cols=(_c, _c + _r), made_by=_NB02, meaning="SpeechSplit rhythm code A_r"),
    Condition("a_pitch", "audio", _p, "ssplit", cols=(_c + _r, _c + _r + _p), made_by=_NB02,
              meaning="SpeechSplit pitch code A_p"),
    Condition("deepspeech", "audio", 40, "phon_win", windowed=True, made_by=_NB02,
              meaning="DeepSpeech-like phone posteriors (talklib's recogniser), AD-NeRF's aud.npy layout"),
    Condition("mfcc", "audio", 13, "mfcc_win", windowed=True, made_by=_FEATS, meaning="13 MFCCs"),
    Condition("mel", "audio", 80, "mel_win", windowed=True, made_by=_FEATS, meaning="80-band log mel"),
    Condition("f_a", "audio", 64, "sync", made_by=_NB02, meaning="DFA-NeRF's contrastive audio feature f_a"),
    Condition("f_exp_aud", "prior", 79, "expaud", sizable=True, made_by=_NB06,
              meaning="NeRF-3DTalker f_exp-aud: the expression read off Lip-wav images of the audio (Eq. 1-2)"),
    Condition("f_exp_style", "prior", 79, "expstyle", sizable=True, made_by=_NB06,
              meaning="NeRF-3DTalker f_exp-style per frame: FuseNet's style contribution, f_gen-exp - f_exp-aud (Eq. 1, 3)"),
    Condition("f_e", "motion", 64, "eyes", sizable=True, made_by=_NB08,
              meaning="DFA-NeRF's eye-blink embedding f_e of the face-attribute autoencoder (Sections 3.2, 3.5); "
                      "rendering: a motion generator's (render --motion), else the training mean"),
]}


@dataclass(frozen=True)
class Part:
    """One condition of a field with its size: ``Part("f_exp", 12)``."""

    name: str
    dim: int

    @property
    def cond(self) -> Condition:
        return CONDITIONS[self.name]

    @property
    def is_audio(self) -> bool:
        return self.cond.source == "audio"

    @property
    def is_prior(self) -> bool:
        """Made from the audio but packed like a 3DMM part (one row per frame): ``f_exp_aud``, ``f_exp_style``."""
        return self.cond.source == "prior"

    @property
    def is_motion(self) -> bool:
        """Packed per frame and read from the clip folder like a prior part, but not computed from a wav:
        a motion generator gives it when rendering (``f_e``)."""
        return self.cond.source == "motion"

    @property
    def from_file(self) -> bool:
        """Read from the clip folder's ``aud_<feature>.npy`` when training (audio, prior and motion parts)."""
        return self.cond.source != "3dmm"

    @property
    def from_audio(self) -> bool:
        """Computed from the driving audio when rendering (audio and prior parts)."""
        return self.cond.source in ("audio", "prior")

    def __str__(self) -> str:
        return f"{self.name}:{self.dim}" if self.cond.sizable else self.name


def valid_names() -> str:
    return ", ".join(CONDITIONS)


def parse(text: str | list | tuple) -> list[Part]:
    """``"f_exp:12,f_illu"`` (or a list of such names) -> parts in packed order (3DMM, prior and motion, audio,
    f_illu).

    A name that does not exist, a size on a fixed-size condition, or a name given twice is a one-line
    ``UserError`` that lists the valid names.
    """
    items = [str(t).strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    if not items:
        raise UserError(f"no conditions given: name at least one of {valid_names()}")
    parts, seen = [], set()
    for it in items:
        name, _, size = it.partition(":")
        if name not in CONDITIONS:
            raise UserError(f"unknown condition {name!r}: choose from {valid_names()}")
        c = CONDITIONS[name]
        if name in seen:
            raise UserError(f"condition {name} is given twice: name each condition once")
        seen.add(name)
        dim = c.dim
        if size:
            if not c.sizable:
                raise UserError(f"condition {name} has a fixed size ({c.dim}): write {name} without ':{size}'")
            if not size.isdigit() or not 1 <= int(size) <= c.dim:
                raise UserError(f"condition {it}: the size must be a whole number from 1 to {c.dim}")
            dim = int(size)
        parts.append(Part(name, dim))
    rank = lambda p: 2 if p.name == "f_illu" else (1 if p.is_audio else 0)  # noqa: E731
    return sorted(parts, key=rank)   # stable: the user's order within each group


def to_text(parts: list[Part]) -> str:
    """The inverse of ``parse``: ``"f_exp:12,f_illu"``."""
    return ",".join(str(p) for p in parts)
