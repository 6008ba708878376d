"""DFA-NeRF's personalized attributes generation (Section 3.4, Eq. (4)-(9), Fig. 4, Table 4).

A face-attribute sequence h_{1:T} (head pose and eye-blink numbers per frame, standardised by the caller)
is mapped by a VAE to a latent sequence z_{1:T} (one z_dim-vector per frame) and back (Fig. 4a, Eq. (4)-(8));
then a cross-modal encoder E_ah, fine-tuned on one identity, embeds that person's audio features f_a and the
Beginning Of Pose (BOP) h_{1:tau} into the same latent space, and the VAE's frozen decoder D turns the
codes into the attributes of the frames that follow (Fig. 4b, Eq. (9)), window after window.

Table 4's four rows are the four ``VAEConfig.kind`` values:

- ``"mlp"``: MLP VAE, a fixed window of ``seq_len`` frames flattened (no notion of time), prior N(0, I);
- ``"lstm"``: LSTM VAE, a bidirectional LSTM encoder and an LSTM decoder, prior N(0, I);
- ``"transformer"``: Trans VAE, Transformer encoder E_h and decoder D, per-frame diagonal posterior,
  prior N(0, I);
- ``"gp_transformer"``: Trans GP-VAE (the paper's), the same networks with a Gaussian-process prior over
  time (Eq. (7), Cauchy kernel) and a posterior with a full temporal covariance per latent dimension, as
  GP-VAE (Fortuin et al. 2020, the paper's ref. [18]) builds it: a banded precision B^T B, B upper
  bidiagonal (``GPPosterior``).

Choices the paper leaves open, stated where they are made: Eq. (6)'s norm is the mean squared error over
frames and numbers (``vae_loss``); Eq. (8) is the standard KL(q || p), as GP-VAE computes it, per frame
(``DiagPosterior.kl``, ``GPPosterior.kl``); the GP posterior's head starts at the prior's AR(1) fit
(``_init_head``); Eq. (9)'s norm is the mean absolute error, plus beta times the
KL of the cross-modal posterior to the same prior (``cme_loss``); the cross-modal encoder is one
Transformer for all four kinds, so Table 4 compares latent spaces and decoders only (``CrossModalEncoder``).
"""

from __future__ import annotations

import math
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

#: the ``kind`` a motion-model file carries (``save_motion``)
KIND = "motion-vae"
#: Table 4's rows: MLP VAE, LSTM VAE, Trans VAE, Trans GP-VAE
KINDS = ("mlp", "lstm", "transformer", "gp_transformer")
_TRANSFORMER_KINDS = ("transformer", "gp_transformer")
_MIN_SCALE = 1e-3      # floor of the bidiagonal precision factor's diagonal (keeps B invertible)


# ---------------------------------------------------------------------------------------------------------
# The Gaussian-process prior, Eq. (7)


def cauchy_kernel(T: int, length_scale: float, sigma: float = 1.0, jitter: float = 1e-3,
                  dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The Cauchy kernel of Eq. (7) over the time indices 0..T-1 (GP-VAE's kernel, the paper's ref. [18]).

    K_ij = sigma / (1 + (i - j)^2 / l^2), plus ``jitter`` on the diagonal so that K is safely positive
    definite. Returns (T, T), float64 by default (it is factorised by ``gp_prior_factors``)."""
    t = torch.arange(T, dtype=dtype, device=device)
    d2 = (t[:, None] - t[None, :]) ** 2
    return sigma / (1.0 + d2 / float(length_scale) ** 2) + jitter * torch.eye(T, dtype=dtype, device=device)


def gp_prior_scales(k: int, base_length: float) -> list[float]:
    """Per-latent-dimension length scales of the GP prior (Eq. (7)): l, l/2, l/4, ... cycling over the k dims.

    As GP-VAE does, latent dimensions see different time scales, from slow (l) to fast; halving stops
    before the scale falls below 1 frame (floor at 1) and the list starts again at l, e.g. l = 8, k = 6:
    [8, 4, 2, 1, 8, 4]. A base length below 1 is used as it is for every dimension."""
    scales = [float(base_length)]
    while scales[-1] / 2 >= 1.0:
        scales.append(scales[-1] / 2)
    return [scales[j % len(scales)] for j in range(k)]


def gp_prior_factors(T: int, scales: list[float], sigma: float = 1.0, jitter: float = 1e-3,
                     dtype: torch.dtype = torch.float32, device=None) -> tuple[Tensor, Tensor, Tensor]:
    """What Eq. (7)-(8) need of the prior N(0, K) per latent dimension, for T frames.

    Returns (L, K_inv, logdet): the Cholesky factors (k, T, T) (K = L L^T, for sampling z = L eps), the
    inverses (k, T, T) and log|K| (k,), computed in float64 and cast to ``dtype``."""
    K = torch.stack([cauchy_kernel(T, s, sigma, jitter) for s in scales])
    L = torch.linalg.cholesky(K)
    K_inv = torch.cholesky_inverse(L)
    logdet = 2.0 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return tuple(x.to(device=device, dtype=dtype) for x in (L, K_inv, logdet))


class GPPrior:
    """The GP prior of Eq. (7) for one model: its length scales and sigma, and its factors per (T, device,
    dtype), cached in this instance (a model owns one; nothing is cached at module level)."""

    def __init__(self, scales: list[float], sigma: float, jitter: float = 1e-3):
        self.scales, self.sigma, self.jitter = list(scales), float(sigma), float(jitter)
        self._cache: dict = {}

    def factors(self, T: int, device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """(L, K_inv, logdet) of ``gp_prior_factors`` for T frames."""
        key = (int(T), str(device), dtype)
        if key not in self._cache:
            self._cache[key] = gp_prior_factors(T, self.scales, self.sigma, self.jitter, dtype, device)
        return self._cache[key]


# ---------------------------------------------------------------------------------------------------------
# Posteriors q(z | .), Eq. (4)-(5), and their KL to the prior, Eq. (8)


def _randn(shape, gen: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normal draws shaped ``shape`` like ``like``; from ``gen`` (on its own device) when given."""
    if gen is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)


@dataclass
class DiagPosterior:
    """q(z|h) = prod_t N(mean_t, diag(exp(log_var_t))) with the standard prior N(0, I): Eq. (5) of the plain
    VAEs of Table 4 (MLP, LSTM and Trans VAE). mean, log_var: (B, T, k)."""

    mean: Tensor
    log_var: Tensor

    def sample(self, gen: torch.Generator | None = None) -> Tensor:
        """The reparameterised draw z = mean + exp(log_var / 2) eps, (B, T, k)."""
        return self.mean + (0.5 * self.log_var).exp() * _randn(self.mean.shape, gen, self.mean)

    def kl(self) -> Tensor:
        """Eq. (8) as KL(q || N(0, I)) (the standard direction; the paper writes KL(p, q)): summed over
        time and latent dims, averaged over the batch, divided by T (per frame). A scalar."""
        per = 0.5 * (self.log_var.exp() + self.mean ** 2 - 1.0 - self.log_var)
        return per.sum((1, 2)).mean() / self.mean.shape[1]


@dataclass
class GPPosterior:
    """GP-VAE's posterior (Eq. (4)-(5) with a full temporal covariance): per latent dimension
    z_{1:T} ~ N(mean, Sigma), Sigma = (B^T B)^{-1}, B upper bidiagonal (positive diagonal ``diag``, one
    off-diagonal ``off``), against the GP prior N(0, K) of Eq. (7).

    mean: (B, T, k); diag: (B, k, T); off: (B, k, T-1); prior_tril, prior_inv: (k, T, T) Cholesky factor
    and inverse of K; prior_logdet: (k,) log|K| (``gp_prior_factors``)."""

    mean: Tensor
    diag: Tensor
    off: Tensor
    prior_tril: Tensor
    prior_inv: Tensor
    prior_logdet: Tensor

    def precision_factor(self) -> Tensor:
        """B, (B, k, T, T) upper bidiagonal: the precision is B^T B."""
        return torch.diag_embed(self.diag) + torch.diag_embed(self.off, offset=1)

    def covariance(self) -> Tensor:
        """Sigma = B^{-1} B^{-T}, (B, k, T, T) (for checks and plots; the loss never forms it)."""
        m = self._inv_factor()
        return m @ m.transpose(-1, -2)

    def _inv_factor(self) -> Tensor:
        b = self.precision_factor()
        eye = torch.eye(b.shape[-1], dtype=b.dtype, device=b.device).expand_as(b)
        return torch.linalg.solve_triangular(b, eye, upper=True)

    def sample(self, gen: torch.Generator | None = None) -> Tensor:
        """The reparameterised draw z = mean + B^{-1} eps (covariance B^{-1} B^{-T} = Sigma), (B, T, k)."""
        b = self.precision_factor()
        eps = _randn(b.shape[:-1] + (1,), gen, self.mean)
        x = torch.linalg.solve_triangular(b, eps, upper=True).squeeze(-1)     # (B, k, T)
        return self.mean + x.transpose(1, 2)

    def kl(self) -> Tensor:
        """Eq. (8), analytic, per latent dim: 0.5 [tr(K^{-1} Sigma) + mu^T K^{-1} mu - T + log|K| - log|Sigma|].

        The standard KL(q || p), as GP-VAE computes it (the paper writes KL(p, q)). tr(K^{-1} Sigma) is exact:
        with M = B^{-1}, tr(K^{-1} M M^T) = sum((K^{-1} M) * M), O(T^3) per dim (fine for T of a few
        hundred); log|Sigma| = -2 sum log diag(B). Summed over latent dims, averaged over the batch,
        divided by T (per frame), a scalar like ``DiagPosterior.kl``."""
        T = self.mean.shape[1]
        m = self._inv_factor()                                                  # (B, k, T, T)
        trace = ((self.prior_inv @ m) * m).sum((-1, -2))                        # (B, k)
        mu = self.mean.transpose(1, 2)                                          # (B, k, T)
        quad = torch.einsum("bkt,kts,bks->bk", mu, self.prior_inv, mu)
        logdet_q = -2.0 * self.diag.log().sum(-1)                               # log|Sigma|, (B, k)
        kl = 0.5 * (trace + quad - T + self.prior_logdet - logdet_q)
        return kl.sum(-1).mean() / T


def _n_params(gp: bool) -> int:
    """Numbers per frame and latent dim a posterior head outputs: mean, log-variance (diag) or mean, B's
    diagonal and off-diagonal (GP)."""
    return 3 if gp else 2


def _ar1_fit(length_scale: float, sigma: float, jitter: float = 1e-3) -> tuple[float, float]:
    """B's diagonal and off-diagonal (a, b) for which B^T B is the precision of the AR(1) process with the GP
    prior's variance and lag-1 correlation (Eq. (7)): rho = k(1) / k(0), innovations s^2 = k(0) (1 - rho^2),
    a = 1 / s, b = -rho / s. The bidiagonal posterior of ``GPPosterior`` starts there."""
    k0 = sigma + jitter
    rho = sigma / (1.0 + 1.0 / float(length_scale) ** 2) / k0
    s = math.sqrt(k0 * (1.0 - rho ** 2))
    return 1.0 / s, -rho / s


def _init_head(head: nn.Linear, k: int, prior: GPPrior | None) -> None:
    """Start a GP posterior head (Linear -> mean, B's diagonal, B's off-diagonal per latent dim) near the
    prior: biases at each latent dim's AR(1) fit (``_ar1_fit``), weights of those rows shrunk 10x.

    GP-VAE starts its posterior anywhere; against a smooth prior (l = 8 frames) a white-noise start costs a
    KL hundreds of times its minimum, which at beta = 0.2 drowns Eq. (6) until the encoder has collapsed."""
    if prior is None:
        return
    n_rep = head.out_features // (3 * k)      # 1 per frame; the MLP's head lays out T frames of (3 k)
    with torch.no_grad():
        w, b = head.weight.view(n_rep, 3, k, -1), head.bias.view(n_rep, 3, k)
        w[:, 1:] *= 0.1
        for j, scale in enumerate(prior.scales):
            a, off = _ar1_fit(scale, prior.sigma, prior.jitter)
            b[:, 1, j] = math.log(math.expm1(a - _MIN_SCALE))       # softplus^{-1}
            b[:, 2, j] = off


def _posterior(raw: Tensor, k: int, prior: GPPrior | None) -> DiagPosterior | GPPosterior:
    """A posterior from a head's raw output (B, T, n k): diagonal Gaussian, or GP-VAE's bidiagonal precision
    (softplus on the diagonal, off-diagonal unconstrained and read from frames 1..T-1) when ``prior``."""
    if prior is None:
        mean, log_var = raw.split(k, -1)
        return DiagPosterior(mean, log_var.clamp(-12.0, 8.0))
    mean, d, o = raw.split(k, -1)
    L, K_inv, logdet = prior.factors(raw.shape[1], raw.device, raw.dtype)
    diag = F.softplus(d).transpose(1, 2) + _MIN_SCALE
    return GPPosterior(mean, diag, o[:, :-1].transpose(1, 2), L, K_inv, logdet)


# ---------------------------------------------------------------------------------------------------------
# The VAE of Fig. 4a, Eq. (4)-(8)


@dataclass(frozen=True)
class VAEConfig:
    """The motion VAE's kind (Table 4's row) and sizes (Section 3.4)."""

    d_in: int                       # numbers per frame of h: 6 head pose + the eye-blink embedding
    kind: str = "gp_transformer"    # "mlp", "lstm", "transformer" or "gp_transformer" (Table 4)
    z_dim: int = 8                  # k, latent numbers per frame
    width: int = 64                 # model width (Transformer d_model, LSTM hidden size, MLP hidden size)
    layers: int = 2                 # Transformer / LSTM / MLP hidden layers, in the encoder and the decoder each
    heads: int = 4                  # attention heads (Transformer kinds)
    seq_len: int = 64               # the window T of the MLP, which flattens a fixed-length window
    length_scale: float = 8.0       # base length l of the GP prior's Cauchy kernel, in frames (Eq. (7))
    sigma: float = 1.0              # the kernel's sigma (Eq. (7))
    beta: float = 0.2               # weight of the KL term (Eq. (8)) in the loss
    dropout: float = 0.0

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: one of {', '.join(KINDS)}")
        if min(self.d_in, self.z_dim, self.width, self.layers, self.heads, self.seq_len) < 1:
            raise ValueError("d_in, z_dim, width, layers, heads and seq_len must all be >= 1")
        if self.kind in _TRANSFORMER_KINDS and self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if self.length_scale <= 0 or self.sigma <= 0 or self.beta < 0 or not 0 <= self.dropout < 1:
            raise ValueError("length_scale and sigma must be > 0, beta >= 0 and dropout in [0, 1)")


def sinusoidal_positions(T: int, width: int, device=None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The Transformer's sinusoidal positional encoding of frames 0..T-1, (T, width)."""
    half = (width + 1) // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    pe = torch.stack([ang.sin(), ang.cos()], -1).flatten(1)[:, :width]
    return pe.to(device=device, dtype=dtype)


def _transformer(width: int, layers: int, heads: int, dropout: float) -> nn.TransformerEncoder:
    """A batch-first Transformer encoder stack (feed-forward 4 x width), as E_h, D and E_ah use."""
    layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _mlp(n_in: int, width: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` hidden layers of ``width`` (ReLU, dropout)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*mods)


class MotionVAE(nn.Module):
    """The face-attribute VAE of Fig. 4a: E_h maps h (B, T, d_in) to q(z|h) (Eq. (4)-(5)), D maps z (B, T, k)
    back to h_hat (B, T, d_in). The structure follows ``cfg.kind`` (module docstring, Table 4):

    - transformer kinds: linear in + sinusoidal positions + Transformer encoder -> per-frame posterior head;
      D the same structure over z -> d_in. "transformer": diagonal posterior, prior N(0, I);
      "gp_transformer": GP prior (Eq. (7)) and GP-VAE's bidiagonal-precision posterior (``GPPosterior``);
    - "lstm": bidirectional LSTM encoder -> per-frame diagonal posterior; a (forward) LSTM decoder over z;
    - "mlp": the window (T = seq_len frames) flattened -> MLP -> (T k) diagonal posterior; MLP decoder.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        d, k, w, n = cfg.d_in, cfg.z_dim, cfg.width, cfg.layers
        gp = cfg.kind == "gp_transformer"
        self.prior = GPPrior(gp_prior_scales(k, cfg.length_scale), cfg.sigma) if gp else None
        n_out = _n_params(gp) * k
        if cfg.kind in _TRANSFORMER_KINDS:
            self.enc_in, self.enc = nn.Linear(d, w), _transformer(w, n, cfg.heads, cfg.dropout)
            self.head = nn.Linear(w, n_out)
            self.dec_in, self.dec = nn.Linear(k, w), _transformer(w, n, cfg.heads, cfg.dropout)
            self.dec_out = nn.Linear(w, d)
        elif cfg.kind == "lstm":
            drop = cfg.dropout if n > 1 else 0.0
            self.enc = nn.LSTM(d, w, n, batch_first=True, bidirectional=True, dropout=drop)
            self.head = nn.Linear(2 * w, n_out)
            self.dec = nn.LSTM(k, w, n, batch_first=True, dropout=drop)
            self.dec_out = nn.Linear(w, d)
        else:
            T = cfg.seq_len
            self.enc, self.head = _mlp(T * d, w, n, cfg.dropout), nn.Linear(w, T * n_out)
            self.dec, self.dec_out = _mlp(T * k, w, n, cfg.dropout), nn.Linear(w, T * d)
        _init_head(self.head, k, self.prior)

    def _check_len(self, T: int, what: str) -> None:
        if self.cfg.kind == "mlp" and T != self.cfg.seq_len:
            raise UserError(f"{what} of {T} frames: the MLP VAE flattens windows of exactly seq_len = "
                            f"{self.cfg.seq_len} frames; give windows of that length")

    def encode(self, h: Tensor) -> DiagPosterior | GPPosterior:
        """E_h, Eq. (4)-(5): h (B, T, d_in) -> q(z|h) over (B, T, k)."""
        if h.ndim != 3 or h.shape[-1] != self.cfg.d_in:
            raise UserError(f"attributes of shape {tuple(h.shape)}: give (B, T, {self.cfg.d_in})")
        B, T, _ = h.shape
        kind = self.cfg.kind
        if kind in _TRANSFORMER_KINDS:
            x = self.enc_in(h) + sinusoidal_positions(T, self.cfg.width, h.device, h.dtype)
            raw = self.head(self.enc(x))
        elif kind == "lstm":
            raw = self.head(self.enc(h)[0])
        else:
            self._check_len(T, "a sequence")
            raw = self.head(self.enc(h.reshape(B, -1))).view(B, T, -1)
        return _posterior(raw, self.cfg.z_dim, self.prior)

    def decode(self, z: Tensor) -> Tensor:
        """D: z (B, T, k) -> h_hat (B, T, d_in)."""
        B, T, _ = z.shape
        kind = self.cfg.kind
        if kind in _TRANSFORMER_KINDS:
            x = self.dec_in(z) + sinusoidal_positions(T, self.cfg.width, z.device, z.dtype)
            return self.dec_out(self.dec(x))
        if kind == "lstm":
            return self.dec_out(self.dec(z)[0])
        self._check_len(T, "a latent sequence")
        return self.dec_out(self.dec(z.reshape(B, -1))).view(B, T, self.cfg.d_in)

    def forward(self, h: Tensor, sample: bool = True, gen: torch.Generator | None = None):
        """h (B, T, d_in) -> (h_hat (B, T, d_in), q(z|h), z (B, T, k)): z drawn by the reparameterisation
        trick (``sample``) or the posterior mean."""
        post = self.encode(h)
        z = post.sample(gen) if sample else post.mean
        return self.decode(z), post, z


def vae_loss(model: MotionVAE, h: Tensor, gen: torch.Generator | None = None) -> dict[str, Tensor]:
    """The VAE's loss: Eq. (6) + beta * Eq. (8), h (B, T, d_in) -> {"loss", "rec", "kl"} (scalars).

    rec: Eq. (6)'s reconstruction error of a reparameterised draw, taken as the mean squared error over
    batch, frames and numbers; kl: the posterior's KL to the prior per frame (``*.kl``), summed over the k
    latent dims. With rec averaged over a frame's d numbers and kl summed over its k dims, the loss is (up to
    a factor) a Gaussian-likelihood ELBO with observation-noise variance d beta / 2 per number: lower beta
    when h has many numbers and the posterior collapses (kl near 0, h_hat near the mean)."""
    h_hat, post, _ = model(h, sample=True, gen=gen)
    rec = F.mse_loss(h_hat, h)
    kl = post.kl()
    return {"loss": rec + model.cfg.beta * kl, "rec": rec, "kl": kl}


# ---------------------------------------------------------------------------------------------------------
# Training windows, shared by the two trainers


def _as_frames(x, width: int, what: str, i: int) -> np.ndarray:
    a = np.asarray(x, np.float32)
    if a.ndim != 2 or a.shape[1] != width:
        raise UserError(f"{what} {i} has shape {a.shape}: give (T, {width}) float arrays")
    return a


def _check_long_enough(n: int, window: int, i: int) -> None:
    if n < window:
        raise UserError(f"sequence {i} has {n} frames: training windows need at least {window} frames; "
                        "give longer sequences or a smaller window")


def _batch(seqs: list[tuple[np.ndarray, ...]], window: int, batch: int, rng: np.random.Generator) -> list[Tensor]:
    """A batch of random windows: every window of every sequence equally likely (sequences drawn in
    proportion to how many windows they hold). seqs: tuples of time-aligned (T_i, .) arrays; returns one
    (batch, window, .) tensor per array of the tuple."""
    counts = np.array([len(s[0]) - window + 1 for s in seqs], np.float64)
    idx = rng.choice(len(seqs), size=batch, p=counts / counts.sum())
    starts = rng.integers(0, counts[idx].astype(np.int64))
    return [torch.from_numpy(np.stack([seqs[i][j][s:s + window] for i, s in zip(idx, starts)]))
            for j in range(len(seqs[0]))]


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def train_vae(model: MotionVAE, sequences: list, steps: int, batch: int = 32, window: int = 64, lr: float = 1e-3,
              seed: int = 0, ckpt: str | Path | None = None, ckpt_every: int = 100,
              progress: bool = True) -> list[dict]:
    """Train the VAE (latent space construction, Fig. 4a) with Eq. (6) + beta * Eq. (8) (``vae_loss``).

    sequences: a list of (T_i, d_in) float arrays (standardised attributes), each at least ``window`` frames
    long (the MLP VAE needs window = seq_len). Each step takes ``batch`` random windows (``_batch``). Adam with
    a cosine decay of lr to 1/20. With ``ckpt`` it resumes from that file after a kill and saves to it every
    ``ckpt_every`` steps and at the end (exact resumption needs dropout 0: dropout draws from torch's global
    generator). Returns the history [{"step", "loss", "rec", "kl"}]."""
    cfg = model.cfg
    seqs = [(_as_frames(s, cfg.d_in, "sequence", i),) for i, s in enumerate(sequences)]
    if not seqs:
        raise UserError("no sequences to train the motion VAE on: give at least one (T, d_in) array")
    for i, (s,) in enumerate(seqs):
        _check_long_enough(len(s), window, i)
    model._check_len(window, "a training window")
    dev = _device(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    settings = {"vae": asdict(cfg), "steps": steps, "batch": batch, "window": window, "lr": lr, "seed": seed,
                "n": len(seqs), "frames": int(sum(len(s[0]) for s in seqs))}
    start, history = (checkpoint.resume_training(ckpt, "motion-VAE training state", settings, model, opt,
                                                 {"rng": rng, "gen": gen}) if ckpt is not None else (0, []))
    model.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="motion VAE", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        (h,) = _batch(seqs, window, batch, rng)
        out = vae_loss(model, h.to(dev), gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        history.append({"step": step + 1, **{k: float(v.detach()) for k, v in out.items()}})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, model, opt, step + 1, history, {"rng": rng, "gen": gen})
    model.eval()
    return history


# ---------------------------------------------------------------------------------------------------------
# The cross-modal encoder of Fig. 4b, Eq. (9)


@dataclass(frozen=True)
class CMEConfig:
    """The cross-modal encoder E_ah's sizes; its latent space (kind, z_dim, length_scale, sigma) is the VAE's
    (``CMEConfig.for_vae``)."""

    a_dim: int                      # numbers per frame of the audio features f_a
    kind: str = "gp_transformer"    # the VAE's kind: GP (bidiagonal precision) posterior or diagonal
    z_dim: int = 8
    length_scale: float = 8.0
    sigma: float = 1.0
    width: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.0

    @classmethod
    def for_vae(cls, vae_cfg: VAEConfig, a_dim: int, **sizes) -> CMEConfig:
        """The config of a cross-modal encoder into ``vae_cfg``'s latent space; ``sizes``: width, layers,
        heads, dropout (default: the VAE's)."""
        base = {"width": vae_cfg.width, "layers": vae_cfg.layers, "heads": vae_cfg.heads,
                "dropout": vae_cfg.dropout}
        return cls(a_dim=a_dim, kind=vae_cfg.kind, z_dim=vae_cfg.z_dim, length_scale=vae_cfg.length_scale,
                   sigma=vae_cfg.sigma, **{**base, **sizes})

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: one of {', '.join(KINDS)}")
        if min(self.a_dim, self.z_dim, self.width, self.layers, self.heads) < 1 or self.width % self.heads:
            raise ValueError("a_dim, z_dim, width, layers, heads >= 1 and width a multiple of heads")


class CrossModalEncoder(nn.Module):
    """E_ah of Fig. 4b / Eq. (9): audio features f_a (B, T, a) and the BOP's codes f_h = E_h(h_{1:tau})
    (B, tau, k) -> the posterior N(mu', K') over z for frames 1..T (B, T, k).

    Both inputs are projected to ``width``, given a learned type embedding (audio / BOP) and sinusoidal
    positions (BOP frame i shares audio frame i's position: the BOP is the start of the same window),
    concatenated along time [f_a : f_h] (T + tau tokens) and run through a Transformer encoder; the outputs
    at the T audio positions give the posterior, of the VAE's family (GP-VAE's bidiagonal precision against
    the GP prior for "gp_transformer", diagonal against N(0, I) otherwise). The same Transformer E_ah is
    used whatever the VAE's kind ("mlp" and "lstm" included), so that Table 4 compares the latent spaces
    and decoders, not the cross-modal encoders."""

    def __init__(self, cfg: CMEConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        gp = cfg.kind == "gp_transformer"
        self.prior = GPPrior(gp_prior_scales(cfg.z_dim, cfg.length_scale), cfg.sigma) if gp else None
        self.audio_in = nn.Linear(cfg.a_dim, cfg.width)
        self.bop_in = nn.Linear(cfg.z_dim, cfg.width)
        self.type_emb = nn.Parameter(0.02 * torch.randn(2, cfg.width))
        self.encoder = _transformer(cfg.width, cfg.layers, cfg.heads, cfg.dropout)
        self.head = nn.Linear(cfg.width, _n_params(gp) * cfg.z_dim)
        _init_head(self.head, cfg.z_dim, self.prior)

    def forward(self, f_a: Tensor, f_h: Tensor) -> DiagPosterior | GPPosterior:
        """f_a (B, T, a), f_h (B, tau, k) -> q(z | f_a, f_h) over (B, T, k)."""
        T, tau = f_a.shape[1], f_h.shape[1]
        pos = sinusoidal_positions(max(T, tau), self.cfg.width, f_a.device, f_a.dtype)
        xa = self.audio_in(f_a) + self.type_emb[0] + pos[:T]
        xh = self.bop_in(f_h) + self.type_emb[1] + pos[:tau]
        y = self.encoder(torch.cat([xa, xh], 1))[:, :T]
        return _posterior(self.head(y), self.cfg.z_dim, self.prior)


def _check_pair(cme: CrossModalEncoder, vae: MotionVAE) -> None:
    c, v = cme.cfg, vae.cfg
    if (c.kind, c.z_dim, c.length_scale, c.sigma) != (v.kind, v.z_dim, v.length_scale, v.sigma):
        raise UserError(f"the cross-modal encoder (kind {c.kind}, z_dim {c.z_dim}) was built for another latent "
                        f"space than this VAE's (kind {v.kind}, z_dim {v.z_dim}): build it with "
                        "CMEConfig.for_vae(vae.cfg, a_dim)")


@torch.no_grad()
def bop_features(vae: MotionVAE, bop: Tensor) -> Tensor:
    """f_h = E_h(h_{1:tau}) of Fig. 4b: the frozen VAE encoder's posterior mean of the BOP, (B, tau, d) ->
    (B, tau, k). The MLP VAE only reads windows of seq_len frames: there the BOP is padded by repeating its
    last frame, and the codes of its first tau frames are kept."""
    tau = bop.shape[1]
    if vae.cfg.kind == "mlp":
        if tau > vae.cfg.seq_len:
            raise UserError(f"a BOP of {tau} frames is longer than the MLP VAE's window ({vae.cfg.seq_len})")
        bop = torch.cat([bop, bop[:, -1:].expand(-1, vae.cfg.seq_len - tau, -1)], 1)
    return vae.encode(bop).mean[:, :tau]


def cme_loss(cme: CrossModalEncoder, vae: MotionVAE, f_a: Tensor, h: Tensor, tau: int,
             gen: torch.Generator | None = None) -> dict[str, Tensor]:
    """The cross-modal encoder's loss: Eq. (9) + beta * KL, f_a (B, T, a), h (B, T, d) -> {"loss", "l1", "kl"}.

    The BOP h_{1:tau} and the audio of frames 1..T give q(z); a reparameterised draw is decoded by the frozen
    D; l1: Eq. (9) (whose norm the paper leaves unnamed) as the mean absolute error over frames tau+1..T;
    kl: the posterior's KL to the VAE's prior (GP or N(0, I)), per frame, weighted by the VAE's beta, which
    keeps the codes where D was trained to read them."""
    f_h = bop_features(vae, h[:, :tau])
    post = cme(f_a, f_h)
    h_hat = vae.decode(post.sample(gen))
    l1 = (h_hat[:, tau:] - h[:, tau:]).abs().mean()
    kl = post.kl()
    return {"loss": l1 + vae.cfg.beta * kl, "l1": l1, "kl": kl}


def _check_window(vae: MotionVAE, tau: int, window: int) -> None:
    if tau < 1 or tau >= window:
        raise UserError(f"a BOP of {tau} frames with windows of {window}: the BOP must be shorter than the "
                        "window and at least 1 frame")
    vae._check_len(window, "a window")


def train_cross_modal(cme: CrossModalEncoder, vae: MotionVAE, items: list[dict], steps: int, tau: int = 8,
                      window: int = 64, batch: int = 32, lr: float = 1e-3, seed: int = 0,
                      ckpt: str | Path | None = None, ckpt_every: int = 100, progress: bool = True) -> list[dict]:
    """Fine-tune the cross-modal encoder on one identity (face attributes generation, Fig. 4b) with
    ``cme_loss`` (Eq. (9)), the VAE frozen (eval mode, no gradients to its weights; its requires_grad flags
    are put back afterwards).

    items: [{"f_a": (T_i, a), "h": (T_i, d)}], time-aligned, T_i >= window; each step takes ``batch`` random
    windows, whose first ``tau`` frames are the BOP. Adam with a cosine decay of lr to 1/20; resumable
    through ``ckpt`` like ``train_vae``. Returns the history [{"step", "loss", "l1", "kl"}]."""
    _check_pair(cme, vae)
    _check_window(vae, tau, window)
    seqs = []
    for i, it in enumerate(items):
        try:
            fa, h = it["f_a"], it["h"]
        except (KeyError, TypeError):
            raise UserError(f"item {i}: give a dict with 'f_a' (T, {cme.cfg.a_dim}) and 'h' (T, {vae.cfg.d_in})"
                            ) from None
        fa = _as_frames(fa, cme.cfg.a_dim, "audio features of item", i)
        h = _as_frames(h, vae.cfg.d_in, "attributes of item", i)
        if len(fa) != len(h):
            raise UserError(f"item {i} has {len(fa)} audio frames and {len(h)} attribute frames: give one of "
                            "each per frame")
        _check_long_enough(len(h), window, i)
        seqs.append((fa, h))
    if not seqs:
        raise UserError("no items to fine-tune the cross-modal encoder on: give at least one {'f_a', 'h'} dict")
    dev = _device(cme)
    opt = torch.optim.Adam(cme.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    settings = {"cme": asdict(cme.cfg), "vae": asdict(vae.cfg), "steps": steps, "tau": tau, "window": window,
                "batch": batch, "lr": lr, "seed": seed, "n": len(seqs), "frames": int(sum(len(s[1]) for s in seqs))}
    start, history = (checkpoint.resume_training(ckpt, "cross-modal encoder training state", settings, cme, opt,
                                                 {"rng": rng, "gen": gen}) if ckpt is not None else (0, []))
    flags = [p.requires_grad for p in vae.parameters()]
    vae.requires_grad_(False)
    vae.eval()
    cme.train()
    try:
        for step in tqdm(range(start, steps), initial=start, total=steps, desc="cross-modal encoder",
                         disable=not progress):
            cosine_lr(opt, lr, step, steps)
            fa, h = _batch(seqs, window, batch, rng)
            out = cme_loss(cme, vae, fa.to(dev), h.to(dev), tau, gen)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            history.append({"step": step + 1, **{k: float(v.detach()) for k, v in out.items()}})
            if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
                checkpoint.save_training(ckpt, settings, cme, opt, step + 1, history, {"rng": rng, "gen": gen})
    finally:
        for p, f in zip(vae.parameters(), flags):
            p.requires_grad_(f)
    cme.eval()
    return history


# ---------------------------------------------------------------------------------------------------------
# Generation, sampling and codes


def _check_arrays(cme: CrossModalEncoder, vae: MotionVAE, f_a, bop) -> tuple[np.ndarray, np.ndarray]:
    _check_pair(cme, vae)
    fa, b = np.asarray(f_a, np.float32), np.asarray(bop, np.float32)
    if fa.ndim != 2 or fa.shape[1] != cme.cfg.a_dim:
        raise UserError(f"audio features of shape {fa.shape}: the cross-modal encoder expects (T, {cme.cfg.a_dim})")
    if b.ndim != 2 or b.shape[1] != vae.cfg.d_in or len(b) == 0:
        raise UserError(f"a BOP of shape {b.shape}: the VAE expects (tau, {vae.cfg.d_in}) with tau >= 1")
    if len(fa) < len(b):
        raise UserError(f"{len(fa)} audio frames for a BOP of {len(b)} frames: the audio must cover the BOP "
                        "(give at least as many audio frames as BOP frames)")
    return fa, b


def _eval(*modules: nn.Module) -> list[bool]:
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    return modes


@torch.no_grad()
def generate(cme: CrossModalEncoder, vae: MotionVAE, f_a, bop, window: int = 64, sample: bool = True,
             gen: torch.Generator | None = None) -> np.ndarray:
    """Face attributes for the whole audio, autoregressively (Section 3.4, test phase): (T, d) float32.

    f_a: (T, a) audio features of frames 1..T; bop: (tau, d), the given start h_{1:tau} (output[:tau] = bop).
    The first window covers frames 1..window with the BOP as its start; each next window starts tau frames
    before the last generated frame, its BOP being those last tau generated frames, so windows advance by
    window - tau; the last window is moved back to end at frame T (its already generated frames are kept).
    Audio shorter than a window is padded by repeating its last frame for that one window. ``sample``: z
    drawn from the cross-modal posterior (from ``gen`` when given), else its mean (deterministic)."""
    fa, b = _check_arrays(cme, vae, f_a, bop)
    tau, T = len(b), len(fa)
    _check_window(vae, tau, window)
    modes = _eval(cme, vae)
    dev = _device(cme)
    out = np.empty((T, vae.cfg.d_in), np.float32)
    out[:tau] = b
    audio = fa if T >= window else np.pad(fa, ((0, window - T), (0, 0)), mode="edge")
    audio_t = torch.from_numpy(audio).to(dev)
    done = tau
    while done < T:
        s = min(done - tau, len(audio) - window)
        bop_t = torch.from_numpy(out[s:s + tau]).to(dev)[None]
        post = cme(audio_t[None, s:s + window], bop_features(vae, bop_t))
        win = vae.decode(post.sample(gen) if sample else post.mean)[0].cpu().numpy()
        end = min(s + window, T)
        out[done:end] = win[done - s:end - s]
        done = end
    for m, mode in zip((cme, vae), modes):
        m.train(mode)
    return out


@torch.no_grad()
def sample_prior(vae: MotionVAE, T: int, n: int = 1, gen: torch.Generator | None = None) -> np.ndarray:
    """Face attributes without audio (Section 3.4's last sentences): z from the prior, decoded by D, (n, T, d).

    GP prior (Eq. (7)): z = L eps per latent dim, L = cholesky(K); otherwise z ~ N(0, I)."""
    vae._check_len(T, "a sampled sequence")
    modes = _eval(vae)
    like = next(vae.parameters())
    if vae.prior is not None:
        L = vae.prior.factors(T, like.device, like.dtype)[0]               # (k, T, T)
        z = (L @ _randn((n, vae.cfg.z_dim, T, 1), gen, like)).squeeze(-1).transpose(1, 2)
    else:
        z = _randn((n, T, vae.cfg.z_dim), gen, like)
    out = vae.decode(z).cpu().numpy()
    vae.train(modes[0])
    return out


@torch.no_grad()
def latent_codes(cme: CrossModalEncoder, vae: MotionVAE, f_a, bop) -> np.ndarray:
    """The codes of Fig. 6 (left, "with audio"): the cross-modal posterior mean of z for audio f_a (T, a) and
    BOP (tau, d), in one pass over the T frames, (T, k) float32. For Fig. 6 right ("without audio") use
    ``attribute_codes``, the VAE encoder's posterior mean of h (``vae.encode(h).mean``)."""
    fa, b = _check_arrays(cme, vae, f_a, bop)
    modes = _eval(cme, vae)
    dev = _device(cme)
    f_h = bop_features(vae, torch.from_numpy(b).to(dev)[None])
    mean = cme(torch.from_numpy(fa).to(dev)[None], f_h).mean[0].cpu().numpy()
    for m, mode in zip((cme, vae), modes):
        m.train(mode)
    return mean


@torch.no_grad()
def attribute_codes(vae: MotionVAE, h) -> np.ndarray:
    """The codes of Fig. 6 (right, "without audio"): E_h's posterior mean ``vae.encode(h).mean`` of the
    attributes h (T, d), (T, k) float32."""
    a = _as_frames(h, vae.cfg.d_in, "attribute sequence", 0)
    modes = _eval(vae)
    mean = vae.encode(torch.from_numpy(a).to(_device(vae))[None]).mean[0].cpu().numpy()
    vae.train(modes[0])
    return mean


# ---------------------------------------------------------------------------------------------------------
# Files


def save_motion(path: str | Path, vae: MotionVAE, cme: CrossModalEncoder | None = None,
                extra: dict | None = None) -> Path:
    """The motion models of Section 3.4 (the VAE, and the cross-modal encoder when given) with ``extra``
    (plain numbers, strings, lists, dicts, tensors: e.g. the attributes' standardisation), atomically
    (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"kind": KIND, "vae_config": asdict(vae.cfg), "vae": vae.state_dict(),
                                  "cme_config": None if cme is None else asdict(cme.cfg),
                                  "cme": None if cme is None else cme.state_dict(), "extra": extra})


def load_motion(path: str | Path) -> tuple[MotionVAE, CrossModalEncoder | None, dict | None]:
    """(vae, cme or None, extra) written by ``save_motion``, in eval mode (one-line errors for a missing,
    foreign or other-kind file)."""
    fix = "give a file written by talklib.motion.vae.save_motion"
    blob = checkpoint.load(path, "motion model", required_keys=("vae_config", "vae", "cme_config", "cme", "extra"),
                           fix=fix)
    if blob.get("kind") != KIND:
        raise UserError(f"{path} holds a checkpoint of kind {blob.get('kind')!r}, not a motion model: {fix}")
    try:
        vae = MotionVAE(VAEConfig(**blob["vae_config"]))
        vae.load_state_dict(blob["vae"])
        cme = None
        if blob["cme_config"] is not None:
            cme = CrossModalEncoder(CMEConfig(**blob["cme_config"]))
            cme.load_state_dict(blob["cme"])
            cme.eval()
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's motion models: {fix}") from None
    return vae.eval(), cme, blob["extra"]
