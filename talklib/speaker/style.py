"""Speaking styles of the synthetic speaker, and its expression split into speech and style parts.

Every frame's expression is the sum of three parts the generator knows (``speaker.speech``):

- the **speech part**: the coarticulated viseme curves of the phone timeline (``visemes.mouth_curves``),
  what the audio moves (jaw, lips);
- the **style part**: brow raises at phrase starts, the smile and dimpler levels, the unnamed components'
  offsets and slow drift (``motion.spontaneous``), how this speaker looks while talking;
- the blinks, which are neither (they follow no audio and no style).

A ``SpeakingStyle`` holds the numbers that differ between speakers. The corpus's identities all speak in
``DEFAULT_STYLE``; ``draw_style`` makes others, and ``styled_expression`` re-dresses a clip's speech part in
any style: NeRF-3DTalker's StyleNet / FuseNet (``talklib.condition.style``) learn from such pairs, and
their disentanglement is measured against these known parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talklib.data.dataset import EXP_NAMES, FPS

N_UNNAMED = 79 - len(EXP_NAMES)
#: columns of the expression that the style moves and the speech does not (brows, dimpler, unnamed)
STYLE_COLUMNS = tuple([EXP_NAMES.index(n) for n in ("dimpler", "brow_inner_raise", "brow_outer_raise")]
                      + list(range(len(EXP_NAMES), 79)))
BLINK_COLUMNS = (EXP_NAMES.index("blink_left"), EXP_NAMES.index("blink_right"))


@dataclass(frozen=True)
class SpeakingStyle:
    """A speaker's style: smile and dimpler levels, how often (``brow_prob``, per phrase start) and how high
    (``brow_amp``, a gain) the brows go up, and the resting offsets of the unnamed components."""

    smile: float = 0.15
    dimpler: float = 0.0
    brow_prob: float = 0.5
    brow_amp: float = 1.0
    unnamed: tuple[float, ...] = (0.0,) * N_UNNAMED

    def unnamed_offsets(self) -> np.ndarray:
        return np.asarray(self.unnamed, np.float64)


DEFAULT_STYLE = SpeakingStyle()


def draw_style(rng: np.random.Generator) -> SpeakingStyle:
    """A random speaking style (the default's ranges widened: subdued to beaming, still to expressive)."""
    return SpeakingStyle(smile=float(rng.uniform(0.0, 0.45)), dimpler=float(rng.uniform(0.0, 0.3)),
                         brow_prob=float(rng.uniform(0.1, 0.9)), brow_amp=float(rng.uniform(0.4, 1.6)),
                         unnamed=tuple(float(x) for x in 0.3 * rng.normal(size=N_UNNAMED)))


def timeline_of(clip) -> list[tuple[str, float, float]]:
    """A clip's phone timeline as ``mouth_curves`` takes it: [(phone, start_s, end_s)]."""
    return [(p.phone, p.start, p.end) for p in clip.phonemes()]


def speech_part(clip) -> np.ndarray:
    """(T, 79) the true speech part of a clip's expression: its viseme curves at its articulation strength."""
    from talklib.speaker.visemes import mouth_curves

    strength = float(clip.meta.get("articulation", 1.0))
    out = np.zeros((clip.n_frames, 79), np.float32)
    out[:, :len(EXP_NAMES)] = mouth_curves(timeline_of(clip), clip.n_frames, FPS, strength=strength)
    return out


def styled_expression(speech: np.ndarray, timeline, style: SpeakingStyle, rng: np.random.Generator
                      ) -> dict[str, np.ndarray]:
    """The speech part ``speech`` (T, 79) spoken in ``style``: {"exp", "style"} (T, 79) each, composed as
    ``speaker.speech.expression_from_speech`` composes the corpus (named columns clipped to [0, 1]); "style"
    is the style part (the blink columns zeroed), so exp = speech + style + blinks up to that clipping."""
    from talklib.speaker.motion import spontaneous

    n = speech.shape[0]
    extra = spontaneous(rng, n, timeline, FPS, lighting_drift=False, style=style)["exp_extra"]
    m = len(EXP_NAMES)
    exp = extra.copy()
    exp[:, :m] = np.clip(exp[:, :m] + speech[:, :m], 0.0, 1.0)
    style_part = extra.copy()
    style_part[:, list(BLINK_COLUMNS)] = 0.0
    return {"exp": exp.astype(np.float32), "style": style_part.astype(np.float32)}
