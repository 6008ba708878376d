"""Spontaneous motion of the synthetic speaker: blinks, brows, head pose, style, lighting drift.

All processes are driven by one ``numpy.random.Generator`` so a seed fixes every curve.

- Blinks: a renewal process with natural rate (0.2–0.5 per second) and duration (150–250 ms), fast
  closing and slower opening (AU45, OpenFace's blink unit).
- Head pose: smooth stochastic process (sum of low-pass filtered noises) of small rotations, like the
  papers' frontal videos, plus small nods that follow speech energy.
- A ``MotionStyle`` holds what differs between people in the last two (DFA-NeRF's "personal" head motion
  and blinks): each axis's amplitude, the frequency content (the cut-offs of the slow and fast parts), how
  strongly nods follow speech energy, the blink rate and duration. ``DEFAULT_MOTION`` is the rendered
  corpus's own (it draws exactly what this module always drew: the blink rate anew for every clip);
  ``draw_motion_style`` makes personal ones (the motion-only corpus, ``speaker.motion_corpus``).
- Brow raises at some phrase starts (AU1/AU2), a slowly varying smile (AU12) and dimpler (AU14).
- Unnamed expression components: small smooth noise (speaker "style").
- Lighting drift: slow change of the SH coefficients (optional).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from talklib.data.dataset import EXP_NAMES

EXP = {n: i for i, n in enumerate(EXP_NAMES)}


def smooth_noise(rng: np.random.Generator, n: int, dims: int, cutoff_hz: float, fps: int = 25) -> np.ndarray:
    """(n, dims) zero-mean unit-variance noise low-passed at ``cutoff_hz`` (Gaussian kernel)."""
    sigma = fps / (2 * np.pi * cutoff_hz)
    half = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    x = rng.normal(size=(n + 2 * half, dims))
    y = np.stack([np.convolve(x[:, d], k, mode="valid") for d in range(dims)], 1)[:n]
    return y / (y.std(0, keepdims=True) + 1e-12)


def blink_curve(rng: np.random.Generator, n: int, fps: int = 25, rate_hz: float = 0.3,
                duration_s: tuple[float, float] = (0.15, 0.25)) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(n,) eyelid closure in [0, 1] and the blink intervals [(start_s, end_s)].

    Inter-blink gaps: a gamma renewal process with mean 1/rate_hz (refractory, more regular than Poisson).
    """
    t_end = n / fps
    t = rng.uniform(0.3, 1.0 / rate_hz)
    events = []
    while t < t_end:
        d = rng.uniform(*duration_s)
        events.append((t, t + d))
        t += d + rng.gamma(4.0, 1.0 / (4.0 * rate_hz))
    fine = 200
    tt = np.arange(n * fine // fps) / fine
    c = np.zeros_like(tt)
    for s, e in events:
        d = e - s
        close = s + 0.4 * d
        up = (tt >= s) & (tt < close)
        c[up] = np.maximum(c[up], np.sin(0.5 * np.pi * (tt[up] - s) / (close - s)))
        down = (tt >= close) & (tt < e)
        c[down] = np.maximum(c[down], np.cos(0.5 * np.pi * (tt[down] - close) / (e - close)))
    # frame value = mean closure over the frame's exposure
    frame = c[: n * (fine // fps)].reshape(n, fine // fps).mean(1) if fine % fps == 0 else c[:: fine // fps][:n]
    return np.clip(frame * 1.15, 0, 1), events


def speech_energy(timeline: list[tuple[str, float, float]], n: int, fps: int = 25) -> np.ndarray:
    """(n,) 1 while speaking (non-SIL), 0 in pauses, smoothed over ~0.2 s."""
    t = (np.arange(n) + 0.5) / fps
    e = np.zeros(n)
    for p, s, en in timeline:
        if p != "SIL":
            e[(t >= s) & (t < en)] = 1.0
    k = np.ones(5) / 5
    return np.convolve(e, k, mode="same")


@dataclass(frozen=True)
class MotionStyle:
    """One person's head motion and blinks (pose columns: yaw, pitch, roll in degrees; x, y, z in metres).

    yaw = yaw_slow * slow_0 + yaw_fast * fast_0; pitch = pitch_slow * slow_1 + nod * fast_1 * speech energy
    (nods that follow the speech); roll = roll_slow * slow_2 + roll_fast * fast_2; position = trans * slow_3..5,
    with slow / fast unit-variance noises low-passed at ``slow_hz`` / ``fast_hz``. ``blink_rate`` (per second;
    None: drawn in 0.2–0.5 for every clip) and ``blink_duration`` (seconds, min / max) shape the blinks.
    """

    yaw_slow: float = 3.0
    yaw_fast: float = 0.6
    pitch_slow: float = 2.0
    nod: float = 0.8
    roll_slow: float = 1.2
    roll_fast: float = 0.0
    trans: tuple[float, float, float] = (0.004, 0.004, 0.004)
    slow_hz: float = 0.15
    fast_hz: float = 1.0
    blink_rate: float | None = None
    blink_duration: tuple[float, float] = (0.15, 0.25)

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_MOTION = MotionStyle()


def draw_motion_style(rng: np.random.Generator) -> MotionStyle:
    """A random personal motion style: still to lively, slow swaying to quick nodding, rare to frequent blinks."""
    def gain(lo, hi):
        return float(rng.uniform(lo, hi))

    return MotionStyle(yaw_slow=gain(0.8, 6.0), yaw_fast=gain(0.1, 1.5), pitch_slow=gain(0.6, 4.0), nod=gain(0.0, 2.5),
                       roll_slow=gain(0.3, 2.5), roll_fast=gain(0.0, 0.8),
                       trans=tuple(float(rng.uniform(0.001, 0.008)) for _ in range(3)),
                       slow_hz=gain(0.08, 0.35), fast_hz=gain(0.6, 2.0), blink_rate=gain(0.1, 0.7),
                       blink_duration=(gain(0.10, 0.18), gain(0.2, 0.35)))


def head_pose(rng: np.random.Generator, n: int, energy: np.ndarray, motion: MotionStyle = DEFAULT_MOTION,
              fps: int = 25, pose_scale: float = 1.0) -> np.ndarray:
    """(n, 6) head pose of ``motion`` (its docstring has the formula); ``energy`` (n,) in [0, 1]: speech energy."""
    m = motion
    slow = smooth_noise(rng, n, 6, m.slow_hz, fps)
    fast = smooth_noise(rng, n, 3, m.fast_hz, fps)
    pose = np.zeros((n, 6))
    pose[:, 0] = pose_scale * (m.yaw_slow * slow[:, 0] + m.yaw_fast * fast[:, 0])
    pose[:, 1] = pose_scale * (m.pitch_slow * slow[:, 1] + m.nod * fast[:, 1] * energy)
    pose[:, 2] = pose_scale * (m.roll_slow * slow[:, 2] + m.roll_fast * fast[:, 2] if m.roll_fast
                               else m.roll_slow * slow[:, 2])
    pose[:, 3:] = pose_scale * np.asarray(m.trans) * slow[:, 3:]
    return pose


def spontaneous(rng: np.random.Generator, n: int, timeline, fps: int = 25, blink_rate: float | None = None,
                pose_scale: float = 1.0, lighting_drift: bool = True, base_illu: np.ndarray | None = None,
                style=None, motion: MotionStyle | None = None) -> dict[str, np.ndarray]:
    """Non-mouth curves for n frames: exp_extra (n, 79) (to add to the mouth curves), pose (n, 6), illu (n, 27).

    ``style``: a ``talklib.speaker.style.SpeakingStyle`` (its brows, smile, dimpler and unnamed offsets);
    None is the corpus's own (``DEFAULT_STYLE``, which draws exactly what this function always drew).
    ``motion``: a ``MotionStyle`` (head pose and blinks); None is ``DEFAULT_MOTION``, likewise.
    ``blink_rate`` overrides the style's rate.
    """
    from talklib.speaker.style import DEFAULT_STYLE

    st = DEFAULT_STYLE if style is None else style
    mo = DEFAULT_MOTION if motion is None else motion
    exp = np.zeros((n, 79), np.float64)
    rate = blink_rate if blink_rate is not None else mo.blink_rate if mo.blink_rate is not None \
        else rng.uniform(0.2, 0.5)
    blink, _ = blink_curve(rng, n, fps, rate, mo.blink_duration)
    asym = 1.0 + 0.05 * rng.normal()
    exp[:, EXP["blink_left"]] = blink
    exp[:, EXP["blink_right"]] = np.clip(blink * asym, 0, 1)
    energy = speech_energy(timeline, n, fps)
    # brow raises at the starts of some phrases
    t = (np.arange(n) + 0.5) / fps
    starts = [s for (p, s, _), (q, _, _) in zip(timeline[1:], timeline[:-1]) if q == "SIL" and p != "SIL"]
    for s in starts:
        if rng.uniform() < st.brow_prob:
            amp = st.brow_amp * rng.uniform(0.3, 0.8)
            dur = rng.uniform(0.4, 0.9)
            bump = amp * np.exp(-0.5 * ((t - s - dur / 2) / (dur / 3)) ** 2)
            exp[:, EXP["brow_inner_raise"]] += bump
            exp[:, EXP["brow_outer_raise"]] += bump * rng.uniform(0.5, 1.0)
    exp[:, EXP["smile"]] += np.clip(st.smile + 0.15 * smooth_noise(rng, n, 1, 0.1, fps)[:, 0], 0, 1)
    exp[:, EXP["dimpler"]] += np.clip(st.dimpler + 0.1 * smooth_noise(rng, n, 1, 0.2, fps)[:, 0], 0, 1)
    exp[:, len(EXP_NAMES):] = st.unnamed_offsets() + 0.3 * smooth_noise(rng, n, 79 - len(EXP_NAMES), 0.5, fps)
    # head pose: yaw, pitch, roll (deg), translation (m)
    pose = head_pose(rng, n, energy, mo, fps, pose_scale)
    # lighting
    from talklib.face3d.model import default_illumination

    base = default_illumination() if base_illu is None else base_illu
    illu = np.repeat(base[None].astype(np.float64), n, 0)
    if lighting_drift:
        drift = smooth_noise(rng, n, 4, 0.05, fps)
        L = illu.reshape(n, 3, 9)
        L[:, :, 0] *= (1.0 + 0.05 * drift[:, :1])
        L[:, :, 3] += 0.25 * drift[:, 1:2]        # light moves left/right (x band-1)
        L[:, :, 1] += 0.12 * drift[:, 2:3]        # up/down
        L[:, 0, 0] *= 1.0 + 0.02 * drift[:, 3]    # slight colour temperature change
        L[:, 2, 0] *= 1.0 - 0.02 * drift[:, 3]
        illu = L.reshape(n, 27)
    return {"exp_extra": exp.astype(np.float32), "pose": pose.astype(np.float32), "illu": illu.astype(np.float32),
            "blink_rate": np.float32(rate)}
