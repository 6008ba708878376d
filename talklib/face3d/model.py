"""The morphable head: S = S̄ + B_id F_id + B_exp F_exp (DFA-NeRF Eq. 1) with albedo and SH lighting.

NeRF-3DTalker Eq. (1) parameterises a head as I : (f_id, f_exp, f_alb, f_illu) with identity 100,
expression 79, albedo 100 and illumination 27 (9 spherical-harmonic coefficients x RGB). This module
builds such a model on mediapipe's face-mesh topology, with the mean shape and texture of a real photo
(``talklib.face3d.asset``). The bases are constructed, not learned (no scan data can be had here):

- identity: a few global anatomical modes (face width, height, depth, jaw width, nose, eye spacing,
  mouth width, chin) then smooth random fields, decreasing variance (PCA-like spectrum); F_id ~ N(0, I).
- expression: the first ``len(EXP_NAMES)`` components are named, anatomically placed deformations
  (jaw rotation about the jaw hinge, lip and eyelid motions, brow raises) with coefficients in [0, 1]
  (1 = full activation); they map to FACS action units (``au_intensity``). The other 67 are small
  smooth local deformations (speaker-specific "style").
- albedo: multiplicative RGB gain fields over the photo texture (global tone, then smooth fields).
- illumination: real SH bands 0..2 per colour channel, applied to the surface normal.

Build once with ``MorphableModel.from_asset()`` (NumPy, ~50 ms, deterministic); evaluate with torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from talklib.data.dataset import AU_NAMES, DIMS, EXP_NAMES
from talklib.face3d import topology as topo
from talklib.face3d.asset import GROUP_MOUTH, load_head_asset

N_ID, N_EXP, N_ALB, N_ILLU = DIMS["id"], DIMS["exp"], DIMS["alb"], DIMS["illu"]
EXP_INDEX = {n: i for i, n in enumerate(EXP_NAMES)}
JAW_OPEN_DEG = 16.0  # jaw rotation at jaw_open = 1

# SH normalisation constants, bands 0..2 (real spherical harmonics)
_SH_C = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """Real SH basis, bands 0..2. normals: (..., 3) unit -> (..., 9)."""
    x, y, z = normals.unbind(-1)
    c0, c1, c2, c3, c4 = _SH_C
    return torch.stack([
        torch.full_like(x, c0), c1 * y, c1 * z, c1 * x,
        c2 * x * y, c2 * y * z, c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)], -1)


def default_illumination(ambient: float = 0.8, frontal: float = 0.25, top: float = 0.08) -> np.ndarray:
    """(27,) SH coefficients of a soft frontal light, white: shading ≈ ambient + frontal·n_z + top·n_y."""
    L = np.zeros((3, 9), np.float32)
    L[:, 0] = ambient / _SH_C[0]
    L[:, 2] = frontal / _SH_C[1]
    L[:, 1] = top / _SH_C[1]
    return L.reshape(-1)


def shade(normals: torch.Tensor, illu: torch.Tensor) -> torch.Tensor:
    """Irradiance per colour. normals (..., 3), illu (B, 27) broadcast over (B, ...) -> (..., 3)."""
    Y = sh_basis(normals)                                   # (B, ..., 9)
    L = illu.reshape(illu.shape[0], 3, 9)                   # (B, 3, 9)
    shape = (illu.shape[0],) + (1,) * (Y.dim() - 2) + (3, 9)
    return (Y.unsqueeze(-2) * L.reshape(shape)).sum(-1)


def rotate_sh(illu: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Lighting seen from a rotated frame: coefficients L' with shade(n, L') = shade(rot @ n, L).

    illu (B, 27), rot (B, 3, 3) (e.g. head-to-world, so L' lights head-frame normals) -> (B, 27).
    SH bands are closed under rotation, so Y(R n) = Y(n) M(R) for a 9x9 M; M is solved by least
    squares on a fixed spread of directions (exact up to rounding).
    """
    g = torch.Generator().manual_seed(0)
    n = F.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64), dim=-1)
    A = sh_basis(n)                                                     # (64, 9)
    Rn = torch.einsum("bij,nj->bni", rot.double().cpu(), n)             # (B, 64, 3)
    M = torch.linalg.lstsq(A.expand(rot.shape[0], -1, -1), sh_basis(Rn)).solution    # (B, 9, 9)
    L = illu.double().cpu().reshape(-1, 3, 9)
    out = torch.einsum("bkj,bcj->bck", M, L).reshape(-1, 27)
    return out.to(dtype=illu.dtype, device=illu.device)


def au_intensity(exp: np.ndarray | torch.Tensor):
    """FACS AU intensities (0..5, as OpenFace's AUxx_r) from expression coefficients.

    exp: (..., 79) -> (..., 10), columns ``AU_NAMES`` (AU01 AU02 AU10 AU12 AU14 AU18 AU20 AU25 AU26 AU45).
    """
    lib = torch if isinstance(exp, torch.Tensor) else np
    e = {n: exp[..., i] for n, i in EXP_INDEX.items()}
    clip = (lambda a: a.clamp(0, 1)) if lib is torch else (lambda a: np.clip(a, 0, 1))
    mx = torch.maximum if lib is torch else np.maximum
    cols = {
        "AU01": e["brow_inner_raise"], "AU02": e["brow_outer_raise"], "AU10": e["upper_lip_raise"],
        "AU12": e["smile"], "AU14": e["dimpler"], "AU18": e["lip_pucker"] + 0.5 * e["lip_funnel"],
        "AU20": e["lip_stretch"], "AU25": e["lips_part"] + 2.5 * e["jaw_open"] + 0.5 * e["lip_funnel"],
        "AU26": e["jaw_open"], "AU45": mx(e["blink_left"], e["blink_right"]),
    }
    return lib.stack([5.0 * clip(cols[n]) for n in AU_NAMES], -1)


def _spread(mean: np.ndarray, anchors: dict[int, np.ndarray], radius: float, mask: np.ndarray | None = None,
            power: float = 3.0) -> np.ndarray:
    """A smooth displacement field (V, 3): anchors keep their displacement exactly, other vertices take
    the inverse-distance-weighted anchor displacement, faded by exp(-(d_nearest / radius)^2)."""
    idx = np.array(list(anchors), np.int64)
    disp = np.array([anchors[i] for i in idx], np.float64)
    d = np.linalg.norm(mean[:, None, :] - mean[idx][None], axis=-1)    # (V, A)
    w = 1.0 / (d ** power + 1e-12)
    out = (w @ disp) / w.sum(1, keepdims=True)
    out *= np.exp(-(d.min(1) / radius) ** 2)[:, None]
    out[idx] = disp
    if mask is not None:
        keep = mask.copy()
        keep[idx] = True
        out[~keep] = 0.0
    return out


def _rbf_field(mean: np.ndarray, rng: np.random.Generator, n_bumps: int, radius: tuple[float, float],
               dim: int = 3, centres: np.ndarray | None = None) -> np.ndarray:
    """A random smooth field (V, dim): a sum of Gaussian bumps with random directions."""
    out = np.zeros((len(mean), dim))
    pool = centres if centres is not None else np.arange(len(mean))
    for _ in range(n_bumps):
        c = mean[rng.choice(pool)]
        r = rng.uniform(*radius)
        direction = rng.normal(size=dim)
        out += np.exp(-np.sum((mean - c) ** 2, 1) / (2 * r * r))[:, None] * direction
    return out


def _unit_rms(field: np.ndarray) -> np.ndarray:
    return field / max(np.sqrt(np.mean(np.sum(field ** 2, -1))), 1e-12)


@dataclass
class MorphableModel:
    """The head model's arrays (NumPy, float32). V vertices, F faces.

    mean (V, 3) metres; faces (F, 3); face_group (F,); uv (V, 2); texture (Ht, Wt, 3) float32 [0, 1];
    id_basis (100, V, 3); exp_basis (79, V, 3); alb_basis (100, V, 3) (relative RGB gain per unit).
    """

    mean: np.ndarray
    faces: np.ndarray
    face_group: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray
    alb_basis: np.ndarray

    @property
    def n_vertices(self) -> int:
        return len(self.mean)

    @classmethod
    def from_asset(cls, asset: dict | None = None) -> "MorphableModel":
        a = asset if asset is not None else load_head_asset()
        mean = a["vertices"].astype(np.float64)
        rng = np.random.default_rng(20240601)  # the model is fixed: its own constant seed
        return cls(
            mean=mean.astype(np.float32), faces=a["faces"].astype(np.int64), face_group=a["face_group"],
            uv=a["uv"].astype(np.float32), texture=a["texture"].astype(np.float32) / 255.0,
            id_basis=_identity_basis(mean, rng).astype(np.float32),
            exp_basis=_expression_basis(mean, rng).astype(np.float32),
            alb_basis=_albedo_basis(mean, rng).astype(np.float32),
        )

    # --- evaluation (torch) -------------------------------------------------------------------
    def tensors(self, device=None) -> dict[str, torch.Tensor]:
        """The arrays as torch tensors on ``device`` (call once, pass to ``shape``/``albedo``)."""
        out = {k: torch.as_tensor(getattr(self, k), device=device)
               for k in ("mean", "faces", "uv", "texture", "id_basis", "exp_basis", "alb_basis")}
        out["mouth_face"] = torch.as_tensor(self.face_group == GROUP_MOUTH, device=device)
        return out

    @staticmethod
    def shape(t: dict, id_coeff: torch.Tensor, exp_coeff: torch.Tensor) -> torch.Tensor:
        """DFA-NeRF Eq. (1): S = S̄ + B_id F_id + B_exp F_exp.

        id_coeff (B, 100), exp_coeff (B, 79) -> vertices (B, V, 3) in the head frame, metres.
        """
        S = t["mean"][None] + torch.einsum("bk,kvc->bvc", id_coeff, t["id_basis"])
        return S + torch.einsum("bk,kvc->bvc", exp_coeff, t["exp_basis"])

    @staticmethod
    def albedo_gain(t: dict, alb_coeff: torch.Tensor) -> torch.Tensor:
        """Per-vertex RGB gain (B, V, 3) = clamp(1 + B_alb F_alb, 0.2, 2) multiplying the photo texture."""
        return (1.0 + torch.einsum("bk,kvc->bvc", alb_coeff, t["alb_basis"])).clamp(0.2, 2.0)


# ------------------------------------------------------------------------------------------------
# basis construction (NumPy)


def _identity_basis(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    V = len(mean)
    c = mean[:topo.N_MESH].mean(0)
    rel = mean - c
    lower = 1.0 / (1.0 + np.exp((mean[:, 1] - mean[topo.NOSE_TIP, 1]) / 0.01))   # below the nose
    nose = np.exp(-np.sum((mean - mean[topo.NOSE_TIP]) ** 2, 1) / (2 * 0.018 ** 2))
    mouth = np.exp(-np.sum((mean - mean[list(topo.MOUTH_LOOP)].mean(0)) ** 2, 1) / (2 * 0.02 ** 2))
    eyes_r = np.exp(-np.sum((mean - mean[topo.RIGHT_IRIS[0]]) ** 2, 1) / (2 * 0.02 ** 2))
    eyes_l = np.exp(-np.sum((mean - mean[topo.LEFT_IRIS[0]]) ** 2, 1) / (2 * 0.02 ** 2))
    chin = 1.0 / (1.0 + np.exp((mean[:, 1] - mean[topo.MOUTH_CORNERS[0], 1] + 0.01) / 0.008))
    z = np.zeros(V)
    named = [
        np.stack([rel[:, 0], z, z], 1),                              # face width
        np.stack([z, rel[:, 1], z], 1),                              # face height
        np.stack([z, z, rel[:, 2]], 1),                              # face depth
        np.stack([rel[:, 0] * lower, z, z], 1),                      # jaw width
        np.stack([z, -0.3 * nose, nose], 1),                         # nose projection
        np.stack([eyes_l - eyes_r, z, z], 1),                        # eye spacing
        np.stack([rel[:, 0] * mouth, z, z], 1),                      # mouth width
        np.stack([z, -chin, 0.3 * chin], 1),                         # chin length
    ]
    fields = [_unit_rms(f) for f in named]
    while len(fields) < N_ID:
        fields.append(_unit_rms(_rbf_field(mean, rng, 3, (0.02, 0.05), centres=np.arange(topo.N_MESH))))
    sigma = 0.004 * (1.0 + np.arange(N_ID)) ** -0.6          # metres (RMS) per unit coefficient
    return np.stack(fields) * sigma[:, None, None]


def _albedo_basis(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Skin-like albedo variation: global brightness, redness, yellowness, then mostly-luminance smooth fields."""
    V = len(mean)
    one = np.ones((V, 1))
    fields = [one * np.array([0.12, 0.12, 0.12]),            # brightness
              one * np.array([0.06, -0.02, -0.03]),          # redness
              one * np.array([0.03, 0.02, -0.05]),           # yellowness
              one * np.array([-0.02, -0.04, -0.06])]         # tan
    k = 0
    while len(fields) < N_ALB:
        f = _rbf_field(mean, rng, 2, (0.015, 0.04), dim=1, centres=np.arange(topo.N_MESH))
        colour = np.array([1.0, 1.0, 1.0]) + 0.25 * rng.normal(size=3)
        fields.append(_unit_rms(f) * colour * 0.04 * (1.0 + k) ** -0.5)
        k += 1
    return np.stack(fields)


def _jaw_weight(mean: np.ndarray) -> np.ndarray:
    """(V,) how much each vertex follows the jaw: 1 below the mouth line, 0 above, smooth sideways."""
    up = np.array(topo.LIPS_INNER_UPPER[1:-1])
    lo = np.array(topo.LIPS_INNER_LOWER[1:-1])
    mid_x = (mean[up, 0] + mean[lo, 0]) / 2
    mid_y = (mean[up, 1] + mean[lo, 1]) / 2
    order = np.argsort(mid_x)
    line = np.interp(mean[:, 0], mid_x[order], mid_y[order])
    xc = mean[list(topo.INNER_MOUTH_CORNERS), 0].mean()
    half = np.abs(np.diff(mean[list(topo.INNER_MOUTH_CORNERS), 0]))[0] / 2
    soft = 0.002 + 0.4 * np.maximum(0.0, np.abs(mean[:, 0] - xc) - half)
    w = 1.0 / (1.0 + np.exp(-(line - mean[:, 1]) / soft))
    w[list(topo.LIPS_INNER_UPPER) + list(topo.LIPS_OUTER_UPPER)] = 0.0
    w[list(topo.LIPS_INNER_LOWER) + list(topo.LIPS_OUTER_LOWER)] = 1.0
    w[list(topo.INNER_MOUTH_CORNERS) + list(topo.MOUTH_CORNERS)] = 0.5
    w[topo.N_LANDMARKS] = 0.5                                 # cavity centre
    w[list(topo.RIGHT_IRIS) + list(topo.LEFT_IRIS)] = 0.0
    w[mean[:, 1] > mean[topo.NOSE_TIP, 1]] = 0.0
    return w


def _expression_basis(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    V = len(mean)
    out = np.zeros((N_EXP, V, 3))
    m = mean
    mouth_c = m[list(topo.MOUTH_LOOP)].mean(0)
    half_w = np.abs(m[topo.MOUTH_CORNERS[1], 0] - m[topo.MOUTH_CORNERS[0], 0]) / 2
    lips = sorted(set(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER + topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER))
    jw = _jaw_weight(m)
    not_eyes = np.ones(V, bool)
    not_eyes[list(topo.RIGHT_EYE_LOOP + topo.LEFT_EYE_LOOP + topo.RIGHT_IRIS + topo.LEFT_IRIS)] = False

    # jaw open: rotation about the jaw hinge (x axis through the temporomandibular joints)
    pivot = np.array([0.0, m[topo.NOSE_TIP, 1] - 0.005, 0.0])
    a = np.deg2rad(JAW_OPEN_DEG)
    R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rel = m - pivot
    out[EXP_INDEX["jaw_open"]] = jw[:, None] * (rel @ R.T - rel)

    def lip_anchor(fn):
        return {i: fn(i) for i in lips}

    upper_in = set(topo.LIPS_INNER_UPPER[1:-1])
    lower_in = set(topo.LIPS_INNER_LOWER[1:-1])
    upper_out = set(topo.LIPS_OUTER_UPPER[1:-1])
    lower_out = set(topo.LIPS_OUTER_LOWER[1:-1])
    corners = set(topo.MOUTH_CORNERS + topo.INNER_MOUTH_CORNERS)

    def part(i):
        if i in upper_in:
            return np.array([0, 0.0025, 0.0])
        if i in lower_in:
            return np.array([0, -0.0035, 0.0])
        if i in upper_out:
            return np.array([0, 0.0012, 0.0005])
        if i in lower_out:
            return np.array([0, -0.0018, 0.0005])
        return np.zeros(3)

    out[EXP_INDEX["lips_part"]] = _spread(m, lip_anchor(part), 0.006, not_eyes)

    def funnel(i):
        d = m[i] - mouth_c
        open_y = 0.35 * d[1] if i in upper_in | lower_in else 0.1 * d[1]
        return np.array([-0.25 * d[0], open_y, 0.006])

    out[EXP_INDEX["lip_funnel"]] = _spread(m, lip_anchor(funnel), 0.01, not_eyes)

    def pucker(i):
        d = m[i] - mouth_c
        return np.array([-0.35 * d[0], -0.25 * d[1], 0.008])

    out[EXP_INDEX["lip_pucker"]] = _spread(m, lip_anchor(pucker), 0.01, not_eyes)

    def stretch(i):
        d = m[i] - mouth_c
        return np.array([0.3 * d[0], -0.3 * d[1] - 0.001, -0.001])

    out[EXP_INDEX["lip_stretch"]] = _spread(m, lip_anchor(stretch), 0.012, not_eyes)

    def smile(i):
        d = m[i] - mouth_c
        return np.array([0.22 * d[0], 0.006 * (d[0] / half_w) ** 2, -0.002 * abs(d[0] / half_w)])

    anchors = lip_anchor(smile)
    for i in topo.RIGHT_CHEEK + topo.LEFT_CHEEK:
        anchors[i] = np.array([0.0, 0.003, 0.001])
    out[EXP_INDEX["smile"]] = _spread(m, anchors, 0.014, not_eyes)

    def raise_upper(i):
        if i in upper_in:
            return np.array([0, 0.0035, 0.0005])
        if i in upper_out:
            return np.array([0, 0.004, 0.001])
        return np.zeros(3)

    out[EXP_INDEX["upper_lip_raise"]] = _spread(m, lip_anchor(raise_upper), 0.008, not_eyes & (jw < 0.5))

    def dimple(i):
        if i in corners:
            return np.array([-0.002 * np.sign(m[i, 0] - mouth_c[0]), 0.001, -0.003])
        return np.zeros(3)

    out[EXP_INDEX["dimpler"]] = _spread(m, lip_anchor(dimple), 0.01, not_eyes)

    for name, upper, lower, corner, iris, loop in (
            ("blink_right", topo.RIGHT_UPPER_LID, topo.RIGHT_LOWER_LID, topo.RIGHT_EYE_CORNERS, topo.RIGHT_IRIS,
             topo.RIGHT_EYE_LOOP),
            ("blink_left", topo.LEFT_UPPER_LID, topo.LEFT_LOWER_LID, topo.LEFT_EYE_CORNERS, topo.LEFT_IRIS,
             topo.LEFT_EYE_LOOP)):
        anchors = {}
        meets = []
        for u, lo in zip(upper, lower):
            meet = m[lo] + 0.2 * (m[u] - m[lo])
            meets.append(meet)
            anchors[u] = meet - m[u]
            anchors[lo] = meet - m[lo]
        for c in corner:
            anchors[c] = np.zeros(3)
        meet_c = np.mean(meets, 0)
        for i in iris:
            anchors[i] = meet_c - m[iris[0]] + np.array([0, 0, -0.001])
        eye_c = m[list(loop)].mean(0)
        near = np.linalg.norm(m - eye_c, axis=1) < 0.03
        out[EXP_INDEX[name]] = _spread(m, anchors, 0.005, near)

    for name, groups in (("brow_inner_raise", (topo.RIGHT_BROW_INNER, topo.LEFT_BROW_INNER)),
                         ("brow_outer_raise", (topo.RIGHT_BROW_OUTER, topo.LEFT_BROW_OUTER))):
        anchors = {i: np.array([0, 0.006, 0.0005]) for g in groups for i in g}
        for i in topo.RIGHT_BROW_MID + topo.LEFT_BROW_MID:
            anchors[i] = np.array([0, 0.003, 0.0])
        above = m[:, 1] > max(m[list(topo.RIGHT_UPPER_LID + topo.LEFT_UPPER_LID), 1]) + 0.002
        out[EXP_INDEX[name]] = _spread(m, anchors, 0.015, above & not_eyes)

    # unnamed style components: small smooth local deformations, ~1 mm RMS over their support
    for k in range(len(EXP_NAMES), N_EXP):
        f = _rbf_field(m, rng, 1, (0.01, 0.025), centres=np.arange(topo.N_MESH)) * not_eyes[:, None]
        out[k] = f / max(np.abs(f).max(), 1e-12) * 0.0015
    return out
