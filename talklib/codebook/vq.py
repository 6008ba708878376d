"""The vector quantiser of NeRF-3DTalker's codebooks S (Eq. (9)) and G (Eq. (10)), after VQ-VAE [15].

``VectorQuantizer`` holds a codebook of K vectors of dimension D. Its query Q replaces each encoding
\\hat f (the last axis of its input) by the nearest code in L2, Eq. (9) / (10). The nearest-code choice has
no gradient, so the decoder's gradient is copied straight through to the encoder (z_e + sg(z_q - z_e)),
and Eq. (11) adds two terms per codebook: the codebook term ||sg(z_e) - z_q||^2, which moves the codes
towards the encodings that chose them, and the commitment term beta * ||z_e - sg(z_q)||^2, which keeps the
encoder near its codes (``codebook_terms``; both are means over vectors and dimensions, as VQ-VAE code
computes them; beta is Eq. (11)'s beta_1 for S and beta_2 for G, 0.25 in VQ-VAE and CodeTalker).

**Codebook collapse, and what we do about it.** A code is only moved by the codebook term when some
encoding chooses it. Codes that start far from every encoding are never chosen, never move, and stay dead;
training then uses a handful of codes and the "standardized space" has a handful of points. Two remedies,
both explicit calls a trainer makes, with the random draws taken from a ``torch.Generator`` it passes (so
a resumed run takes the very same draws):

- ``init_from(encodings, gen)`` puts the codes where the data is before the first step: k-means++ seeding
  over the first batch's encodings (each next code drawn with probability proportional to its squared
  distance from the codes so far), or, when the batch has fewer vectors than K, every encoding once and the
  rest random encodings with a little noise (so that copies can split).
- ``track(counts)`` counts, per code, the steps since it was last chosen; ``restart_dead(encodings, gen)``
  moves every code idle for ``dead_after`` steps onto a random current encoding (and resets its count):
  it is then the nearest code of at least that encoding, and competes again (as Jukebox / SoundStream do).

``perplexity(counts)`` = exp(entropy of the usage) is the number of codes "effectively" used: K for a
uniform usage, 1 when one code takes everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class VQOutput:
    """The query of Eq. (9) / (10) on encodings z_e (..., D).

    quantized: (..., D) the codes, carrying z_e's gradient straight through; codes: (...) their indices;
    codebook_term, commit_term: Eq. (11)'s ||sg(z_e) - z_q||^2 and ||z_e - sg(z_q)||^2 (scalars, before
    beta); counts: (K,) how many vectors chose each code; encodings: z_e itself."""
    quantized: Tensor
    codes: Tensor
    codebook_term: Tensor
    commit_term: Tensor
    counts: Tensor
    encodings: Tensor


def codebook_terms(z_e: Tensor, z_q: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. (11)'s two terms of one codebook: (||sg(z_e) - z_q||^2, ||z_e - sg(z_q)||^2), means over all entries.

    The first trains the codebook only, the second (weighted by beta_1 or beta_2) the encoder only."""
    return ((z_e.detach() - z_q) ** 2).mean(), ((z_e - z_q.detach()) ** 2).mean()


def perplexity(counts: Tensor) -> float:
    """exp(-sum_k p_k log p_k) of a code usage (K,) (p = counts / total): K when uniform, 1 for one code,
    0 when nothing was counted. The usage statistic logged beside Eq. (11)."""
    c = counts.double()
    total = c.sum()
    if total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def _rows(x: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """Codes for Eq. (9) / (10) from data: n rows of x (N, D), distinct while N allows; past that, repeats
    with noise of 1 % of x's spread."""
    x = x.detach().cpu().float()
    if n <= len(x):
        return x[torch.randperm(len(x), generator=gen)[:n]].clone()
    extra = x[torch.randint(0, len(x), (n - len(x),), generator=gen)]
    noise = torch.randn(extra.shape, generator=gen) * (0.01 * x.std().clamp(min=1e-6))
    return torch.cat([x[torch.randperm(len(x), generator=gen)], extra + noise])


def kmeans_pp(x: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """k-means++ seeding: k rows of x (N, D), N >= k, each next one drawn with probability proportional to
    its squared distance from those already chosen (on the CPU, with ``gen``'s draws). Initialises the codes
    of Eq. (9) / (10) where the encodings are."""
    x = x.detach().cpu().float()
    first = int(torch.randint(0, len(x), (1,), generator=gen))
    chosen = [first]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:   # every row is already a code: fill with random distinct rows
            rest = torch.ones(len(x), dtype=torch.bool)
            rest[chosen] = False
            pool = rest.nonzero().flatten()
            chosen += pool[torch.randperm(len(pool), generator=gen)[:k - len(chosen)]].tolist()
            break
        i = int(torch.multinomial(d2 / total, 1, generator=gen))
        chosen.append(i)
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return x[chosen].clone()


class VectorQuantizer(nn.Module):
    """A codebook of ``n_codes`` vectors of size ``dim`` and its query Q, Eq. (9) (codebook S) / Eq. (10) (G).

    forward(z_e (..., dim)) -> ``VQOutput``. Buffers (saved with the weights): ``initialised`` (whether
    ``init_from`` ran) and ``idle`` (K,), steps since each code was last chosen (``track``). A code idle
    for ``dead_after`` steps is dead and ``restart_dead`` re-seeds it (module docstring: codebook collapse)."""

    def __init__(self, n_codes: int, dim: int, dead_after: int = 100, chunk: int = 4096):
        super().__init__()
        if n_codes < 1 or dim < 1 or dead_after < 1:
            raise ValueError(f"n_codes {n_codes}, dim {dim}, dead_after {dead_after}: all must be >= 1")
        self.n_codes, self.dim, self.dead_after, self.chunk = n_codes, dim, dead_after, chunk
        self.codebook = nn.Parameter(torch.empty(n_codes, dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("idle", torch.zeros(n_codes, dtype=torch.long))

    @torch.no_grad()
    def nearest(self, z: Tensor) -> Tensor:
        """Q's argmin of Eq. (9) / (10): encodings (M, dim) -> indices (M,) of their nearest codes in L2
        (in chunks of rows, so M x K distances never all sit in memory)."""
        c = self.codebook.detach()
        c2 = (c * c).sum(1)
        out = [((zc * zc).sum(1, keepdim=True) - 2 * zc @ c.T + c2).argmin(1) for zc in z.split(self.chunk)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=z.device)

    def forward(self, z_e: Tensor) -> VQOutput:
        """Eq. (9) / (10) with straight-through gradients, and the codebook terms of Eq. (11)."""
        if z_e.shape[-1] != self.dim:
            raise ValueError(f"encodings of size {z_e.shape[-1]}, the codebook holds vectors of size {self.dim}")
        flat = z_e.reshape(-1, self.dim)
        idx = self.nearest(flat)
        z_q = self.codebook[idx].view_as(z_e)
        cb, commit = codebook_terms(z_e, z_q)
        st = z_e + (z_q - z_e).detach()
        counts = torch.bincount(idx, minlength=self.n_codes)
        return VQOutput(quantized=st, codes=idx.view(z_e.shape[:-1]), codebook_term=cb, commit_term=commit,
                        counts=counts, encodings=z_e)

    @torch.no_grad()
    def init_from(self, encodings: Tensor, gen: torch.Generator) -> None:
        """Seed the codes of Eq. (9) / (10) from data (k-means++ over ``encodings`` (..., dim), see the module docstring) and
        mark the codebook initialised; the random draws come from ``gen`` (a CPU ``torch.Generator``)."""
        x = encodings.reshape(-1, self.dim)
        codes = kmeans_pp(x, self.n_codes, gen) if len(x) >= self.n_codes else _rows(x, self.n_codes, gen)
        self.codebook.copy_(codes.to(self.codebook))
        self.idle.zero_()
        self.initialised.fill_(True)

    @torch.no_grad()
    def track(self, counts: Tensor) -> None:
        """One training step's usage of Eq. (9) / (10)'s codes (K,) (``VQOutput.counts``): idle + 1 for
        unchosen codes, 0 for chosen."""
        used = counts.to(self.idle.device) > 0
        self.idle.add_(1).masked_fill_(used, 0)

    def dead(self) -> Tensor:
        """Indices of the codes of Eq. (9) / (10) idle for ``dead_after`` steps or more."""
        return (self.idle >= self.dead_after).nonzero().flatten()

    @torch.no_grad()
    def restart_dead(self, encodings: Tensor, gen: torch.Generator) -> int:
        """Move every dead code of Eq. (9) / (10) onto a random encoding of ``encodings`` (..., dim) (distinct ones while there
        are enough), reset their idle counts, and return how many were restarted. Fights codebook collapse
        (module docstring); the draws come from ``gen``."""
        dead = self.dead()
        if len(dead) == 0:
            return 0
        rows = _rows(encodings.reshape(-1, self.dim), len(dead), gen)
        self.codebook[dead] = rows.to(self.codebook)
        self.idle[dead] = 0
        return len(dead)
