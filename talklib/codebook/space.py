"""NeRF-3DTalker's local-global Standardized Space (Section II.D, Eq. (9)-(11)).

A frame goes through two branches. The **local AU semantic space**: the pre-trained AU encoder
(``talklib.codebook.au``) gives \\hat f_AU, one vector per AU, each replaced by its nearest entry of the
semantic codebook S (Eq. (9)). The **global space**: a global encoder of the whole face gives \\hat f_glo,
here a grid of vectors (one per 2^n_down x 2^n_down patch), each replaced by its nearest entry of the
global codebook G (Eq. (10)). A decoder turns (f_AU, f_glo) into the standardized frame \\hat F_t+, of the
input's size. Training minimises Eq. (11):

    L_S = |F_t+ - F_t|_1 + |sg(f^_AU) - f_AU|^2 + beta_1 |f^_AU - sg(f_AU)|^2
                         + |sg(f^_glo) - f_glo|^2 + beta_2 |f^_glo - sg(f_glo)|^2

**Stand-ins.** The paper's global encoder is its ref. [25], not specified further: ``StandardizedSpace``
uses a small stride-2 conv encoder (and a mirror-image decoder), VQ-VAE style. The AU encoder is frozen
by default (``SpaceConfig.tune_au``), as the paper's "pre-trained AU encoder": then beta_1's commitment
term has nothing to move (it is still computed and logged), S's codes move to the means of the frozen
AU features that choose them (k-means by gradient descent), and the global encoder, both codebooks and
the decoder train. With ``tune_au=True`` the AU encoder
is fine-tuned by Eq. (11) (and may drift from the AUs it was trained to read).

The paper's Table III ablations are switches: ``use_au=False`` (w/o AU) and ``use_global=False``
(w/o Global); at least one must stay on. ``train_space`` / ``train_au_encoder`` resume after a kill
(``talklib.checkpoint.save_training``); ``standardize`` maps uint8 frames to standardized uint8 frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.codebook.au import AUEncoder, AUEncoderConfig, check_frames, to_tensor
from talklib.codebook.au import train_au_encoder  # noqa: F401  (re-exported: the space's two trainers sit together)
from talklib.codebook.vq import VectorQuantizer, VQOutput, perplexity
from talklib.errors import UserError
from talklib.runtime import cosine_lr

#: the ``kind`` a standardized-space file carries (``save_space``)
KIND = "standardized-space"

#: the names of the two branches, in the order of Eq. (11)'s terms
BRANCHES = ("au", "glo")


@dataclass(frozen=True)
class SpaceConfig:
    """Sizes and switches of the standardized space (Section II.D, Eq. (9)-(11); Table III's ablations: use_au, use_global).

    The paper's codebooks hold 8192 codes (of dimension 256, after CodeTalker); the defaults here are
    sized for the synthetic speaker's small frames, and the presets set both."""

    image_size: int = 64        # square frames, a multiple of 2**n_down (and of 16 with the AU branch)
    width: int = 16             # channels of the global encoder's first conv layer (and the decoder's last)
    use_au: bool = True         # the local AU semantic space (off: Table III's "w/o AU")
    use_global: bool = True     # the global space (off: Table III's "w/o Global")
    au: AUEncoderConfig = field(default_factory=AUEncoderConfig)  # the AU encoder; au.image_size == image_size
    au_codes: int = 256         # |S|, each code of size au.au_dim
    glo_codes: int = 512        # |G|
    glo_dim: int = 32           # size of each grid vector of \hat f_glo (and of G's codes)
    n_down: int = 3             # stride-2 stages of the global encoder: an (image_size / 2**n_down)^2 grid
    dead_after: int = 100       # a code unused for this many steps is re-seeded (``vq`` module docstring)
    tune_au: bool = False       # fine-tune the AU encoder with Eq. (11) (False: frozen, as pre-trained)

    def check(self) -> None:
        if not (self.use_au or self.use_global):
            raise UserError("use_au and use_global are both off: the standardized space needs at least one branch "
                            "(Table III drops one at a time)")
        if self.n_down < 1 or self.image_size % 2 ** self.n_down:
            raise ValueError(f"image_size {self.image_size}: a multiple of 2**n_down = {2 ** self.n_down}")
        if self.use_au and self.au.image_size != self.image_size:
            raise ValueError(f"the AU encoder sees {self.au.image_size}x{self.au.image_size} frames, the space "
                             f"{self.image_size}x{self.image_size}: give au=AUEncoderConfig(image_size={self.image_size})")
        if min(self.width, self.au_codes, self.glo_codes, self.glo_dim, self.dead_after) < 1:
            raise ValueError("width, au_codes, glo_codes, glo_dim and dead_after must all be >= 1")

    @classmethod
    def from_dict(cls, d: dict) -> "SpaceConfig":
        """The inverse of ``dataclasses.asdict`` (the nested AU config of Eq. (7)-(9) included)."""
        return cls(**{**d, "au": AUEncoderConfig(**d["au"])})


@dataclass
class SpaceOutput:
    """One pass through the space: frame (B, 3, H, W) = \\hat F_t+ in [0, 1]; au / glo: the ``VQOutput``
    of Eq. (9) / (10) (None for a branch switched off)."""
    frame: Tensor
    au: VQOutput | None
    glo: VQOutput | None


def _stage_widths(cfg: SpaceConfig) -> list[int]:
    return [cfg.width * 2 ** min(k, 2) for k in range(cfg.n_down)]


class StandardizedSpace(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] -> ``SpaceOutput``: the AU branch (Eq. (9)), the global branch (Eq. (10))
    and the decoder to \\hat F_t+. ``au_encoder``: a pre-trained ``AUEncoder`` to use (its config must be
    ``cfg.au``); None builds an untrained one."""

    def __init__(self, cfg: SpaceConfig | None = None, au_encoder: AUEncoder | None = None):
        super().__init__()
        cfg = cfg or SpaceConfig()
        cfg.check()
        self.cfg = cfg
        widths = _stage_widths(cfg)
        top = widths[-1]
        self.grid = cfg.image_size // 2 ** cfg.n_down
        dec_in = 0
        self.au_encoder = self.au_vq = self.au_to_grid = None
        if cfg.use_au:
            if au_encoder is not None and au_encoder.cfg != cfg.au:
                raise UserError(f"the AU encoder was built with {au_encoder.cfg}, the space's config says {cfg.au}: "
                                "build SpaceConfig(au=encoder.cfg)")
            self.au_encoder = au_encoder if au_encoder is not None else AUEncoder(cfg.au)
            self.au_encoder.requires_grad_(cfg.tune_au)
            self.au_vq = VectorQuantizer(cfg.au_codes, cfg.au.au_dim, cfg.dead_after)
            # f_AU has no spatial layout: a linear map lays it out on the decoder's grid
            self.au_to_grid = nn.Linear(cfg.au.n_au * cfg.au.au_dim, top * self.grid * self.grid)
            dec_in += top
        elif au_encoder is not None:
            raise ValueError("an AU encoder was given to a space built with use_au=False")
        self.glo_encoder = self.glo_vq = None
        if cfg.use_global:
            layers, cin = [], 3
            for c in widths:
                layers += [nn.Conv2d(cin, c, 4, stride=2, padding=1), nn.ReLU()]
                cin = c
            layers += [nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(), nn.Conv2d(cin, cfg.glo_dim, 1)]
            self.glo_encoder = nn.Sequential(*layers)
            self.glo_vq = VectorQuantizer(cfg.glo_codes, cfg.glo_dim, cfg.dead_after)
            dec_in += cfg.glo_dim
        layers = [nn.Conv2d(dec_in, top, 3, padding=1), nn.ReLU()]
        cin = top
        for c in widths[-2::-1] + [cfg.width]:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            cin = c
        layers += [nn.Conv2d(cin, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*layers)

    def quantizers(self) -> dict[str, VectorQuantizer]:
        """The codebooks of the branches switched on: {"au": S (Eq. (9)), "glo": G (Eq. (10))}."""
        return {k: q for k, q in (("au", self.au_vq), ("glo", self.glo_vq)) if q is not None}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What Eq. (11) trains: everything but a frozen AU encoder."""
        return [p for p in self.parameters() if p.requires_grad]

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """The encodings before the query of Eq. (9) / (10):
        {"au": \\hat f_AU (B, n_au, au_dim), "glo": \\hat f_glo (B, g, g, glo_dim)}."""
        out = {}
        if self.au_encoder is not None:
            out["au"] = self.au_encoder.features(images)
        if self.glo_encoder is not None:
            out["glo"] = self.glo_encoder(images * 2.0 - 1.0).permute(0, 2, 3, 1)
        return out

    def decode(self, f_au: Tensor | None, f_glo: Tensor | None) -> Tensor:
        """The decoder of Section II.D (its output enters Eq. (11)'s L1): standardized features
        f_AU (B, n_au, au_dim), f_glo (B, g, g, glo_dim) -> \\hat F_t+ (B, 3, H, W) in [0, 1]. Each is None
        exactly when its branch is off."""
        parts = []
        if self.au_to_grid is not None:
            parts.append(self.au_to_grid(f_au.flatten(1)).view(len(f_au), -1, self.grid, self.grid))
        if self.glo_vq is not None:
            parts.append(f_glo.permute(0, 3, 1, 2))
        return torch.sigmoid(self.decoder(torch.cat(parts, 1)))

    def forward(self, images: Tensor) -> SpaceOutput:
        """Eq. (9) and (10) on a batch, then the decoder: images (B, 3, H, W) in [0, 1] -> ``SpaceOutput``."""
        enc = self.encode(images)
        q = {k: vq(enc[k]) for k, vq in self.quantizers().items()}
        au, glo = q.get("au"), q.get("glo")
        frame = self.decode(au.quantized if au else None, glo.quantized if glo else None)
        return SpaceOutput(frame=frame, au=au, glo=glo)

    @torch.no_grad()
    def init_codebooks(self, images: Tensor, gen: torch.Generator) -> None:
        """Seed each codebook (S of Eq. (9), G of Eq. (10)) not yet initialised from the encodings of ``images`` (k-means++,
        ``VectorQuantizer.init_from``), so no code of S or G starts dead."""
        enc = self.encode(images)
        for k, vq in self.quantizers().items():
            if not bool(vq.initialised):
                vq.init_from(enc[k], gen)


def standardize_loss(out: SpaceOutput, target: Tensor, beta1: float = 0.25, beta2: float = 0.25) -> dict[str, Tensor]:
    """Eq. (11): L_S = |F_t+ - F_t|_1 + (S's codebook term + beta1 * its commitment) + (G's + beta2 * G's).

    out: the space's output on a batch; target: F_t (B, 3, H, W) in [0, 1]. The L1 is the mean absolute
    error per pixel and channel; the codebook terms are ``vq.codebook_terms``' means; a branch switched off
    contributes 0. Returns {"loss", "l1", "au_codebook", "au_commit", "glo_codebook", "glo_commit"}."""
    zero = out.frame.new_zeros(())
    l1 = (out.frame - target).abs().mean()
    terms = {"l1": l1}
    for name, vq_out in (("au", out.au), ("glo", out.glo)):
        terms[f"{name}_codebook"] = vq_out.codebook_term if vq_out is not None else zero
        terms[f"{name}_commit"] = vq_out.commit_term if vq_out is not None else zero
    loss = (l1 + terms["au_codebook"] + beta1 * terms["au_commit"]
            + terms["glo_codebook"] + beta2 * terms["glo_commit"])
    return {"loss": loss, **terms}


def _batch(x_all: Tensor, t_all: Tensor, batch: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    i = torch.from_numpy(rng.integers(0, len(x_all), batch))
    return x_all[i], t_all[i]


def train_space(model: StandardizedSpace, frames: np.ndarray, targets: np.ndarray, steps: int, batch: int = 16,
                lr: float = 1e-3, beta1: float = 0.25, beta2: float = 0.25, seed: int = 0,
                ckpt: str | Path | None = None, ckpt_every: int = 100, progress: bool = True) -> list[dict]:
    """Train the standardized space with Eq. (11): frames (N, H, W, 3) uint8 in, targets F_t (N, H, W, 3)
    uint8 (the same frames to learn the speaker's space from real frames; generated frames and their real
    counterparts to learn to pull them back).

    Before the first step each codebook is seeded from the first batch's encodings; after every step each
    code's usage is tracked and codes idle for ``cfg.dead_after`` steps are moved onto current encodings
    (``talklib.codebook.vq``: codebook collapse). Adam with a cosine decay of lr to 1/20; the random draws
    (batches: a NumPy generator; code seeding: a torch generator) are saved with ``ckpt``, so a run resumed
    after a kill ends exactly where the uninterrupted one does. Saves every ``ckpt_every`` steps and at the end.
    Returns the history, one dict per step: "step", Eq. (11)'s "loss", "l1", "au_codebook", "au_commit",
    "glo_codebook", "glo_commit", and per codebook the batch's "*_used" (distinct codes), "*_perplexity" and
    "*_restarted" (dead codes re-seeded); 0 for a branch switched off."""
    cfg = model.cfg
    check_frames(frames, cfg.image_size, "standardized space")
    check_frames(targets, cfg.image_size, "standardized space")
    if len(frames) != len(targets):
        raise UserError(f"{len(frames)} frames and {len(targets)} targets: give one target frame per input frame")
    dev = next(model.parameters()).device
    x_all, t_all = to_tensor(frames), to_tensor(targets)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    settings = {"space": asdict(cfg), "steps": steps, "batch": batch, "lr": lr, "beta1": beta1, "beta2": beta2,
                "seed": seed, "n": len(frames)}
    start, history = (checkpoint.resume_training(ckpt, "standardized-space training state", settings, model, opt,
                                                 {"rng": rng, "gen": gen}) if ckpt is not None else (0, []))
    model.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="standardized space", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        x, t = _batch(x_all, t_all, batch, rng)
        x, t = x.to(dev), t.to(dev)
        model.init_codebooks(x, gen)           # only the first time: the flag is saved with the weights
        out = model(x)
        terms = standardize_loss(out, t, beta1, beta2)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        row = {"step": step + 1, **{k: float(v.detach()) for k, v in terms.items()}}
        for name in BRANCHES:
            vq, o = model.quantizers().get(name), getattr(out, name)
            row[f"{name}_used"], row[f"{name}_perplexity"], row[f"{name}_restarted"] = 0, 0.0, 0
            if vq is not None:
                vq.track(o.counts)
                row[f"{name}_used"] = int((o.counts > 0).sum())
                row[f"{name}_perplexity"] = perplexity(o.counts)
                row[f"{name}_restarted"] = vq.restart_dead(o.encodings.detach(), gen)
        history.append(row)
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            checkpoint.save_training(ckpt, settings, model, opt, step + 1, history, {"rng": rng, "gen": gen})
    model.eval()
    return history


def _check_input(model: StandardizedSpace, frames: np.ndarray) -> None:
    check_frames(frames, model.cfg.image_size, "standardized space")


@torch.no_grad()
def standardize(model: StandardizedSpace, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """\\hat F_t+ for every frame: (N, H, W, 3) uint8 -> (N, H, W, 3) uint8, through Eq. (9)-(10) and the
    decoder, ``batch`` frames at a time. Frames of another size than the model's are refused (one line)."""
    _check_input(model, frames)
    model.eval()
    dev = next(model.parameters()).device
    out = [model(to_tensor(frames[s:s + batch]).to(dev)).frame.cpu() for s in range(0, len(frames), batch)]
    x = torch.cat(out).permute(0, 2, 3, 1).numpy()
    return (x * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def codes_of(model: StandardizedSpace, frames: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """The codes each frame picks: {"au": (N, n_au) indices into S (Eq. (9)), "glo": (N, g, g) into G (Eq. (10))},
    for the branches switched on."""
    _check_input(model, frames)
    model.eval()
    dev = next(model.parameters()).device
    parts: dict[str, list] = {k: [] for k in model.quantizers()}
    for s in range(0, len(frames), batch):
        out = model(to_tensor(frames[s:s + batch]).to(dev))
        for k in parts:
            parts[k].append(getattr(out, k).codes.cpu())
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def code_usage(model: StandardizedSpace, frames: np.ndarray, batch: int = 64) -> dict[str, dict]:
    """How much of each codebook a set of frames uses: {"au" (S, Eq. (9)) / "glo" (G, Eq. (10)): {"counts" (K,)
    int64 (how many vectors chose each code), "used" (codes chosen at least once), "perplexity" (``vq.perplexity``
    of the counts: the number of codes effectively used)}} for the branches switched on."""
    out = {}
    for k, codes in codes_of(model, frames, batch).items():
        counts = np.bincount(codes.ravel(), minlength=model.quantizers()[k].n_codes)
        out[k] = {"counts": counts, "used": int((counts > 0).sum()), "perplexity": perplexity(torch.from_numpy(counts))}
    return out


def save_space(model: StandardizedSpace, path: str | Path) -> Path:
    """The trained space of Eq. (9)-(11): kind, config and weights (AU encoder and codebooks included),
    atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"kind": KIND, "config": asdict(model.cfg), "state": model.state_dict()})


def load_space(path: str | Path) -> StandardizedSpace:
    """A standardized space (Eq. (9)-(11)) written by ``save_space``, in eval mode; a missing, foreign or
    other-kind file is refused with a one-line ``UserError``."""
    fix = "give a file written by talklib.codebook.space.save_space"
    blob = checkpoint.load(path, "standardized space", required_keys=("config", "state"), fix=fix)
    if blob.get("kind") != KIND:
        raise UserError(f"{path} holds a checkpoint of kind {blob.get('kind')!r}, not a standardized space: {fix}")
    try:
        model = StandardizedSpace(SpaceConfig.from_dict(blob["config"]))
        model.load_state_dict(blob["state"])
    except (TypeError, ValueError, KeyError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's standardized space: {fix}") from None
    return model.eval()
