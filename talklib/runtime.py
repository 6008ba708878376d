"""Device choice and seeding. Functions take and return things; nothing is kept at module level."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np


def pick_device(name: str = "auto"):
    """``auto`` -> CUDA when present, else CPU; otherwise the named torch device (checked)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but no CUDA GPU is visible: use device=auto or cpu")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that two CPU runs with one seed give identical numbers."""
    import torch

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def generator(seed: int) -> np.random.Generator:
    """A NumPy generator for one purpose; derive sub-seeds as ``seed * 1000 + k``."""
    return np.random.default_rng(seed)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch CPU threads, then restore the previous count.

    One thread is what the small-preset builders use: on a small shared CPU, OpenMP's spinning threads
    make small ops ~10x slower, and one thread keeps every float reduction in the same order.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cosine_lr(optimizer, lr: float, step: int, steps: int) -> None:
    """Set every parameter group's learning rate for ``step`` of ``steps``: a cosine decay from ``lr`` to lr / 20,
    the schedule of every small talklib trainer (Lip-wav, the 3D prior, StyleNet / FuseNet, the AU encoder, the
    standardized space, the attribute autoencoder, the motion VAEs and cross-modal encoders)."""
    for g in optimizer.param_groups:
        g["lr"] = float(lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / max(steps, 1)))))
