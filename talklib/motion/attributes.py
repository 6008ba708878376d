"""DFA-NeRF's face-attribute disentanglement (Section 3.2, Eq. (1)-(2), Fig. 3).

The 3DMM expression code is PCA-based and entangled: one coefficient moves lips and eyelids together.
DFA-NeRF reads the 3D face landmarks S of Eq. (1) (S = S_bar + B_id F_id + B_exp F_exp, 68 points picked from
the mesh) into a fully connected autoencoder whose encoder E_L gives two embeddings, a mouth code f_m and an
eye code f_e, and whose decoder D_L(f_m, f_e) gives the landmarks back. The codes are taught their meaning by
swapping them between two faces A and B (Fig. 3) and asking for the landmarks that combination means.

**How talklib reads Eq. (2).** The paper writes
L_rec = ||l_{m_B}^{e_A} - l_{m_B}^{e_B}||_1 + ||l_{m_A}^{e_B} - l_{m_A}^{e_A}||_1, comparing the decoding of
swapped embeddings with a target whose other half differs, which cannot be meant literally. talklib reads it
region-wise: D_L(f_{m_B}, f_{e_A}) must show B's landmarks on ``mouth_idx`` and A's on ``eye_idx`` (the
composite target l_{m_B}^{e_A}), and symmetrically D_L(f_{m_A}, f_{e_B}) must show A's mouth and B's eyes; plus
the plain L1 reconstructions D_L(E_L(l_A)) = l_A and D_L(E_L(l_B)) = l_B (the paper's "reconstruct the face
landmarks with L1 loss"). Switching f_m between A and B or switching f_e gives the same two decodings, so every
step takes both (``attribute_loss``). All L1 is on normalised coordinates (``AttributeAE.normalise``).

The region split is the caller's: ``mouth_idx`` are the landmarks the mouth moves (lips, lower jaw) and
``eye_idx`` all the others (eyes, brows, nose, upper face), together a partition of range(L). A mouth landmark
of B depends on B's identity geometry as well as B's expression, so f_m carries some of B's identity (the mouth
part of B_id F_id) beside its mouth motion, and f_e the rest; the region-wise target is well defined all the
same. A and B are frames of different identities (the paper's "another face B"), or with probability
``same_identity_prob`` two frames of one identity, so that swaps within an identity (the use DFA-NeRF makes of
f_e: blinks of the person being rendered) are learned too.

``swap_scores`` and ``region_change`` measure on held-out pairs what the swap is for: swapping f_m moves the
mouth to B's and leaves the eyes A's. Taught in notebook 08.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.errors import UserError
from talklib.runtime import cosine_lr

#: the ``kind`` an attribute-autoencoder file carries (``save_attribute_ae``)
KIND = "attribute-ae"


@dataclass(frozen=True)
class AttributeAEConfig:
    """The attribute autoencoder's sizes (Section 3.2, Fig. 3).

    The normalisation (mean shape (L*3,) and std) is not a size: ``train_attribute_ae`` computes it from the
    training landmarks and ``AttributeAE`` keeps it in buffers, so a saved model carries it."""

    n_landmarks: int = 68        # L, the 3DMM landmarks of Eq. (1) (68 as in FaceWarehouse)
    mouth_dim: int = 16          # size of f_m, the mouth embedding
    eye_dim: int = 4             # size of f_e, the eye-blink embedding
    width: int = 256             # hidden width of E_L and D_L
    layers: int = 3              # hidden layers per MLP (E_L's trunk, D_L)
    per_coordinate_std: bool = False   # False: one std for all coordinates (keeps the face's shape); True: one each

    def check(self) -> None:
        if min(self.n_landmarks, self.mouth_dim, self.eye_dim, self.width, self.layers) < 1:
            raise ValueError("n_landmarks, mouth_dim, eye_dim, width and layers must all be >= 1")
        if self.n_landmarks < 2:
            raise ValueError("n_landmarks must be >= 2 (a mouth region and an eye region)")


def _mlp(n_in: int, width: int, layers: int, n_out: int | None) -> nn.Sequential:
    """``layers`` hidden Linear + SiLU layers of ``width``, then a linear output of n_out (None: no output layer)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else width, width), nn.SiLU()]
    if n_out is not None:
        mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


class AttributeAE(nn.Module):
    """E_L and D_L of Section 3.2 (Fig. 3): landmarks (N, L, 3) <-> (f_m (N, mouth_dim), f_e (N, eye_dim)).

    E_L is one shared MLP trunk over the flattened normalised landmarks (L*3,) with two linear heads, one for
    f_m and one for f_e (Fig. 3 draws one encoder giving both codes; the heads keep them separate vectors). D_L
    is one MLP over the concatenation [f_m, f_e] giving the normalised landmarks, returned in original units.
    The normalisation lives in the buffers ``lm_mean`` (L*3,) and ``lm_std`` (L*3,) (a scalar std is stored
    repeated); until ``fit_normalisation`` they are 0 and 1."""

    def __init__(self, cfg: AttributeAEConfig | None = None):
        super().__init__()
        cfg = cfg or AttributeAEConfig()
        cfg.check()
        self.cfg = cfg
        d = 3 * cfg.n_landmarks
        self.trunk = _mlp(d, cfg.width, cfg.layers, None)
        self.head_m = nn.Linear(cfg.width, cfg.mouth_dim)
        self.head_e = nn.Linear(cfg.width, cfg.eye_dim)
        self.decoder = _mlp(cfg.mouth_dim + cfg.eye_dim, cfg.width, cfg.layers, d)
        self.register_buffer("lm_mean", torch.zeros(d))
        self.register_buffer("lm_std", torch.ones(d))

    @torch.no_grad()
    def fit_normalisation(self, landmarks: Tensor) -> None:
        """Set the mean shape and std from training landmarks (N, L, 3), in place.

        The mean is per coordinate. The std is the RMS deviation from the mean over all coordinates (one
        number: distances keep their proportions, so an L1 on the mouth weighs a millimetre as one on the
        eyes), or with ``per_coordinate_std`` one per coordinate, floored at a tenth of that RMS so a
        coordinate that hardly moves in training is not blown up at test time."""
        x = landmarks.reshape(len(landmarks), -1).to(self.lm_mean)
        mean = x.mean(0)
        var = ((x - mean) ** 2).mean(0)
        rms = var.mean().sqrt().clamp(min=1e-6)
        std = var.sqrt().clamp(min=0.1 * float(rms)) if self.cfg.per_coordinate_std else rms.expand_as(mean)
        self.lm_mean.copy_(mean)
        self.lm_std.copy_(std)

    def normalise(self, landmarks: Tensor) -> Tensor:
        """Landmarks (N, L, 3) in original units -> flattened normalised coordinates (N, L*3)."""
        return (landmarks.reshape(len(landmarks), -1) - self.lm_mean) / self.lm_std

    def denormalise(self, x: Tensor) -> Tensor:
        """Flattened normalised coordinates (N, L*3) -> landmarks (N, L, 3) in original units."""
        return (x * self.lm_std + self.lm_mean).view(len(x), self.cfg.n_landmarks, 3)

    def encode_normalised(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """E_L on normalised coordinates (N, L*3) -> (f_m (N, mouth_dim), f_e (N, eye_dim))."""
        h = self.trunk(x)
        return self.head_m(h), self.head_e(h)

    def decode_normalised(self, f_m: Tensor, f_e: Tensor) -> Tensor:
        """D_L(f_m, f_e) -> normalised coordinates (N, L*3), where Eq. (2)'s L1 is taken."""
        return self.decoder(torch.cat([f_m, f_e], -1))

    def encode(self, landmarks: Tensor) -> tuple[Tensor, Tensor]:
        """f_m, f_e = E_L(l) (Section 3.2): landmarks (N, L, 3) in original units -> (N, mouth_dim), (N, eye_dim)."""
        return self.encode_normalised(self.normalise(landmarks))

    def decode(self, f_m: Tensor, f_e: Tensor) -> Tensor:
        """l' = D_L(f_m, f_e) (Section 3.2): (N, mouth_dim), (N, eye_dim) -> landmarks (N, L, 3) in original units."""
        return self.denormalise(self.decode_normalised(f_m, f_e))

    def forward(self, landmarks: Tensor) -> Tensor:
        """The reconstruction D_L(E_L(l)): landmarks (N, L, 3) -> (N, L, 3), original units."""
        return self.decode(*self.encode(landmarks))


def check_split(mouth_idx, eye_idx, n_landmarks: int) -> tuple[np.ndarray, np.ndarray]:
    """The region split as two int64 arrays, or a one-line ``UserError`` unless ``mouth_idx`` and ``eye_idx``
    are non-empty integer indices that together hold every landmark 0..L-1 exactly once."""
    fix = (f"give mouth_idx (lips, lower jaw) and eye_idx (all the others) that together hold every landmark "
           f"index 0..{n_landmarks - 1} exactly once")
    m, e = np.asarray(mouth_idx), np.asarray(eye_idx)
    for a in (m, e):
        if a.ndim != 1 or len(a) == 0 or not (np.issubdtype(a.dtype, np.integer)):
            raise UserError(f"region indices of shape {a.shape} and dtype {a.dtype}: {fix}")
    both = np.concatenate([m, e]).astype(np.int64)
    counts = np.bincount(both[(both >= 0) & (both < n_landmarks)], minlength=n_landmarks)
    outside = int(((both < 0) | (both >= n_landmarks)).sum())
    if outside or (counts != 1).any():
        raise UserError(f"mouth_idx and eye_idx do not split the {n_landmarks} landmarks ({outside} out of range, "
                        f"{int((counts == 0).sum())} missing, {int((counts > 1).sum())} given twice): {fix}")
    return m.astype(np.int64), e.astype(np.int64)


def check_landmarks(landmarks, n_landmarks: int, what: str = "landmarks") -> np.ndarray:
    """Landmarks as float32 (N, L, 3), or a one-line ``UserError`` for another shape, N = 0, or NaN / inf."""
    x = np.asarray(landmarks)
    if x.ndim != 3 or x.shape[1:] != (n_landmarks, 3) or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{what} of shape {x.shape} and dtype {x.dtype}: give (N, {n_landmarks}, 3) 3DMM landmark "
                        f"coordinates (the attribute autoencoder was built for {n_landmarks} landmarks)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{what} hold {int((~np.isfinite(x)).sum())} NaN or inf coordinates: drop the frames whose "
                        "3DMM fit failed before training or scoring")
    return x


def _check_groups(groups, n: int) -> np.ndarray:
    """Identity labels (N,) -> their index 0..G-1 per frame; one-line ``UserError`` unless N integers, G >= 2."""
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n or not np.issubdtype(g.dtype, np.integer):
        raise UserError(f"groups of shape {g.shape} and dtype {g.dtype}: give one integer identity label per "
                        f"landmark frame ({n} frames)")
    uniq, inv = np.unique(g, return_inverse=True)
    if len(uniq) < 2:
        raise UserError(f"all {n} frames are of one identity ({uniq[0]}): Eq. (2) swaps embeddings between "
                        "different faces, give frames of at least 2 identities")
    return inv.astype(np.int64)


def attribute_loss(ae: AttributeAE, x_a: Tensor, x_b: Tensor, mouth_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eq. (2) read region-wise (module docstring), plus the plain L1 reconstructions of A and B.

    x_a, x_b: (B, L*3) normalised landmarks of the paired frames A and B; mouth_mask: (L*3,) bool, True on the
    coordinates of ``mouth_idx``. Returns (loss, rec, swap) with
    rec = (|D(f_mA, f_eA) - l_A|_1 + |D(f_mB, f_eB) - l_B|_1) / 2 and
    swap = (|D(f_mB, f_eA) - l_{m_B}^{e_A}|_1 + |D(f_mA, f_eB) - l_{m_A}^{e_B}|_1) / 2, each L1 a mean over
    coordinates and frames, l_{m_B}^{e_A} being B's mouth coordinates with A's others; loss = rec + swap."""
    f_m, f_e = ae.encode_normalised(torch.cat([x_a, x_b]))
    n = len(x_a)
    f_ma, f_mb, f_ea, f_eb = f_m[:n], f_m[n:], f_e[:n], f_e[n:]
    out = ae.decode_normalised(torch.cat([f_m, f_mb, f_ma]), torch.cat([f_e, f_ea, f_eb]))
    rec_out, mb_ea, ma_eb = out[:2 * n], out[2 * n:3 * n], out[3 * n:]
    rec = F.l1_loss(rec_out, torch.cat([x_a, x_b]))
    target_mb_ea = torch.where(mouth_mask, x_b, x_a)
    target_ma_eb = torch.where(mouth_mask, x_a, x_b)
    swap = 0.5 * (F.l1_loss(mb_ea, target_mb_ea) + F.l1_loss(ma_eb, target_ma_eb))
    return rec + swap, rec, swap


def _batch(ident: np.ndarray, by_ident: tuple[np.ndarray, np.ndarray, np.ndarray], batch: int,
           same_identity_prob: float, rng: np.random.Generator, p_a: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of frame indices (A, B), each (batch,): A uniform over frames (or drawn with the probabilities
    ``p_a``); B with probability ``same_identity_prob`` a frame of A's identity (it may be A itself), else a frame
    of another identity (the identity uniform over the others, the frame uniform within it, or by ``p_a``)."""
    order, starts, counts = by_ident
    n_ident = len(starts)
    ia = rng.integers(0, len(ident), batch) if p_a is None else rng.choice(len(ident), batch, p=p_a)
    ga = ident[ia]
    same = rng.random(batch) < same_identity_prob
    gb = np.where(same, ga, (ga + rng.integers(1, n_ident, batch)) % n_ident)
    if p_a is None:
        ib = order[starts[gb] + np.minimum((rng.random(batch) * counts[gb]).astype(np.int64), counts[gb] - 1)]
        return ia, ib
    # B's frame within its identity with the same weights: inverse CDF of the weights in identity order
    cw = np.cumsum(p_a[order])
    lo = np.where(starts[gb] > 0, cw[np.maximum(starts[gb] - 1, 0)], 0.0)
    hi = cw[starts[gb] + counts[gb] - 1]
    pos = np.searchsorted(cw, lo + rng.random(batch) * (hi - lo), side="right")
    ib = order[np.clip(pos, starts[gb], starts[gb] + counts[gb] - 1)]
    return ia, ib


def _mouth_mask(mouth_idx: np.ndarray, n_landmarks: int, device) -> Tensor:
    """(L*3,) bool: True on the x, y, z of every mouth landmark (the flattened order of ``normalise``)."""
    m = torch.zeros(n_landmarks, 3, dtype=torch.bool)
    m[torch.from_numpy(mouth_idx)] = True
    return m.flatten().to(device)


def train_attribute_ae(ae: AttributeAE, landmarks, groups, mouth_idx, eye_idx, steps: int, batch: int = 256,
                       lr: float = 1e-3, same_identity_prob: float = 0.5, seed: int = 0,
                       ckpt: str | Path | None = None, ckpt_every: int = 200, progress: bool = True,
                       frame_weights=None) -> list[dict]:
    """Train E_L and D_L with Eq. (2) read region-wise plus the L1 reconstructions (``attribute_loss``).

    landmarks: (N, L, 3) 3DMM landmarks (head frame, front view, original units); groups: (N,) integer
    identity of each frame (at least 2 identities); mouth_idx / eye_idx: the region split (``check_split``).
    Each step draws ``batch`` pairs (A, B) (``_batch``: B of another identity, or of A's own with probability
    ``same_identity_prob``) and takes both swaps. Before the first step the normalisation is fitted to
    ``landmarks`` (``AttributeAE.fit_normalisation``), so give a fresh model. Adam with a cosine decay of lr to
    1/20. With ``ckpt`` it resumes from that file after a kill (refusing one trained with other settings) and
    saves to it every ``ckpt_every`` steps and at the end. Returns the history [{"step", "loss", "rec", "swap"}].
    The model is on the device of its parameters; the landmarks are moved there.

    ``frame_weights``: (N,) non-negative weights with which frames A and B are drawn (B within its identity;
    default: uniform). Blinks are
    rare (a few per cent of frames) and the L1 of Eq. (2) is content to leave them out of f_e when they are
    drawn as often as they occur; notebook 08 draws closed-eye frames more often (weights from the eye aspect
    ratio of the landmarks themselves, so no label enters), a sampling choice the paper does not describe."""
    cfg = ae.cfg
    x_np = check_landmarks(landmarks, cfg.n_landmarks)
    ident = _check_groups(groups, len(x_np))
    m_idx, _ = check_split(mouth_idx, eye_idx, cfg.n_landmarks)
    if steps < 0 or batch < 1 or not 0.0 <= same_identity_prob <= 1.0:
        raise UserError(f"steps {steps}, batch {batch}, same_identity_prob {same_identity_prob}: give steps >= 0, "
                        "batch >= 1 and a probability in [0, 1]")
    p_a = None
    if frame_weights is not None:
        w = np.asarray(frame_weights, np.float64)
        if w.shape != (len(x_np),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise UserError(f"frame_weights of shape {w.shape}: give one finite non-negative weight per frame "
                            f"({len(x_np)}), not all zero")
        p_a = w / w.sum()
    order = np.argsort(ident, kind="stable")
    counts = np.bincount(ident)
    by_ident = (order, np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    dev = next(ae.parameters()).device
    ae.fit_normalisation(torch.from_numpy(x_np).to(dev))
    mask = _mouth_mask(m_idx, cfg.n_landmarks, dev)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    settings = {"ae": asdict(cfg), "steps": steps, "batch": batch, "lr": lr, "seed": seed, "n": len(x_np),
                "identities": len(counts), "same_identity_prob": float(same_identity_prob),
                "mouth_idx": sorted(int(i) for i in m_idx),
                "frame_weights": None if p_a is None else float(np.round((p_a * np.arange(len(p_a))).sum(), 6))}
    start, history = (checkpoint.resume_training(ckpt, "attribute-autoencoder training state", settings, ae, opt,
                                                 {"rng": rng}) if ckpt is not None else (0, []))
    with torch.no_grad():   # after the resume: the normalisation is the file's (the same, for the same data)
        x_all = ae.normalise(torch.from_numpy(x_np).to(dev))
    ae.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="attribute AE", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        ia, ib = _batch(ident, by_ident, batch, same_identity_prob, rng, p_a)
        loss, rec, swap = attribute_loss(ae, x_all[torch.from_numpy(ia).to(dev)], x_all[torch.from_numpy(ib).to(dev)],
                                         mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"step": step + 1, "loss": float(loss.detach()), "rec": float(rec.detach()),
                        "swap": float(swap.detach())})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, ae, opt, step + 1, history, {"rng": rng})
    ae.eval()
    return history


@torch.no_grad()
def _codes(ae: AttributeAE, x: np.ndarray, batch: int = 4096) -> tuple[Tensor, Tensor]:
    """E_L over checked landmarks (N, L, 3) float32 in batches -> (f_m, f_e) on the model's device."""
    ae.eval()
    dev = next(ae.parameters()).device
    parts = [ae.encode(torch.from_numpy(x[s:s + batch]).to(dev)) for s in range(0, len(x), batch)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def embed(ae: AttributeAE, landmarks, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """f_m, f_e = E_L(l) (Section 3.2) of landmarks (N, L, 3), as float32 arrays (N, mouth_dim), (N, eye_dim)."""
    x = check_landmarks(landmarks, ae.cfg.n_landmarks)
    f_m, f_e = _codes(ae, x, batch)
    return f_m.cpu().numpy(), f_e.cpu().numpy()


def _region_l2(pred: Tensor, target: Tensor, idx: np.ndarray) -> float:
    """Mean Euclidean distance per landmark over the landmarks ``idx`` and all frames; pred, target (N, L, 3)."""
    i = torch.from_numpy(idx).to(pred.device)
    return float((pred[:, i] - target[:, i]).norm(dim=-1).mean())


def _pair(ae: AttributeAE, landmarks_a, landmarks_b, mouth_idx, eye_idx):
    """Checked paired landmarks as tensors on the model's device, their codes, and the region split."""
    L = ae.cfg.n_landmarks
    a, b = check_landmarks(landmarks_a, L, "landmarks_a"), check_landmarks(landmarks_b, L, "landmarks_b")
    if a.shape != b.shape:
        raise UserError(f"landmarks_a {a.shape} and landmarks_b {b.shape}: give as many frames of each, paired row "
                        "by row")
    m, e = check_split(mouth_idx, eye_idx, L)
    dev = next(ae.parameters()).device
    return torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev), _codes(ae, a), _codes(ae, b), m, e


@torch.no_grad()
def swap_scores(ae: AttributeAE, landmarks_a, landmarks_b, mouth_idx, eye_idx) -> dict[str, float]:
    """How well swapping the codes of Section 3.2 swaps the regions, on held-out pairs (A, B).

    landmarks_a, landmarks_b: (N, L, 3) each, paired row by row. Every number is a mean Euclidean distance per
    landmark (original units; the same key with ``_mm`` is it times 1000, i.e. millimetres for landmarks in
    metres). ``mBeA_*`` is D_L(f_mB, f_eA): its mouth ``_mouth_vs_B`` (small when f_m carries B's mouth) and
    ``_mouth_vs_A``, its eyes ``_eye_vs_A`` (small when f_e keeps A's eyes) and ``_eye_vs_B``; ``mAeB_*`` the
    reverse swap D_L(f_mA, f_eB) (``_mouth_vs_A``, ``_mouth_vs_B``, ``_eye_vs_B``, ``_eye_vs_A``);
    ``rec_mouth`` / ``rec_eye`` the plain reconstruction error of A and B per region; ``mouth_A_vs_B`` /
    ``eye_A_vs_B`` how far apart A's and B's regions are, the distance a swap has to bridge. Plus ``pairs``."""
    a, b, (f_ma, f_ea), (f_mb, f_eb), m, e = _pair(ae, landmarks_a, landmarks_b, mouth_idx, eye_idx)
    mb_ea, ma_eb = ae.decode(f_mb, f_ea), ae.decode(f_ma, f_eb)
    rec = ae.decode(torch.cat([f_ma, f_mb]), torch.cat([f_ea, f_eb]))
    ab = torch.cat([a, b])
    s = {"mBeA_mouth_vs_B": _region_l2(mb_ea, b, m), "mBeA_mouth_vs_A": _region_l2(mb_ea, a, m),
         "mBeA_eye_vs_A": _region_l2(mb_ea, a, e), "mBeA_eye_vs_B": _region_l2(mb_ea, b, e),
         "mAeB_mouth_vs_A": _region_l2(ma_eb, a, m), "mAeB_mouth_vs_B": _region_l2(ma_eb, b, m),
         "mAeB_eye_vs_B": _region_l2(ma_eb, b, e), "mAeB_eye_vs_A": _region_l2(ma_eb, a, e),
         "rec_mouth": _region_l2(rec, ab, m), "rec_eye": _region_l2(rec, ab, e),
         "mouth_A_vs_B": _region_l2(a, b, m), "eye_A_vs_B": _region_l2(a, b, e)}
    return {**s, **{f"{k}_mm": 1000.0 * v for k, v in s.items()}, "pairs": len(a)}


@torch.no_grad()
def region_change(ae: AttributeAE, landmarks_a, landmarks_b, mouth_idx, eye_idx,
                  swap: str = "mouth") -> dict[str, float]:
    """How much the other region moves when only one code is swapped (Section 3.2's claim, measured).

    swap="mouth": D_L(f_mA, f_eA) against D_L(f_mB, f_eA) (only f_m swapped); swap="eye": against
    D_L(f_mA, f_eB). Returns ``moved``: the mean Euclidean distance per landmark between the two decodings on the
    swapped region; ``leaked``: the same on the other region; ``ratio`` = leaked / moved (near 0: disentangled;
    NaN when nothing moved); ``moved_mm`` / ``leaked_mm`` times 1000. landmarks_a, landmarks_b: (N, L, 3)."""
    if swap not in ("mouth", "eye"):
        raise UserError(f"swap={swap!r}: give 'mouth' (swap f_m) or 'eye' (swap f_e)")
    _, _, (f_ma, f_ea), (f_mb, f_eb), m, e = _pair(ae, landmarks_a, landmarks_b, mouth_idx, eye_idx)
    base = ae.decode(f_ma, f_ea)
    other = ae.decode(f_mb, f_ea) if swap == "mouth" else ae.decode(f_ma, f_eb)
    here, there = (m, e) if swap == "mouth" else (e, m)
    moved, leaked = _region_l2(other, base, here), _region_l2(other, base, there)
    return {"moved": moved, "leaked": leaked, "ratio": leaked / moved if moved > 0 else float("nan"),
            "moved_mm": 1000.0 * moved, "leaked_mm": 1000.0 * leaked}


def save_attribute_ae(ae: AttributeAE, path: str | Path) -> Path:
    """The trained attribute autoencoder of Section 3.2: kind, config and weights with its normalisation buffers,
    atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"kind": KIND, "config": asdict(ae.cfg), "state": ae.state_dict()})


def load_attribute_ae(path: str | Path) -> AttributeAE:
    """An attribute autoencoder (Section 3.2) written by ``save_attribute_ae``, in eval mode (one-line errors for a
    missing, foreign or other-kind file)."""
    fix = "give a file written by talklib.motion.attributes.save_attribute_ae"
    blob = checkpoint.load(path, "attribute autoencoder", required_keys=("config", "state"), fix=fix)
    if blob.get("kind") != KIND:
        raise UserError(f"{path} holds a checkpoint of kind {blob.get('kind')!r}, not an attribute autoencoder: {fix}")
    try:
        ae = AttributeAE(AttributeAEConfig(**blob["config"]))
        ae.load_state_dict(blob["state"])
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's attribute autoencoder: {fix}") from None
    return ae.eval()
