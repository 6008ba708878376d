"""Checkpoints: the one module through which every trainer saves its model and loads it back.

The NeRF (``talklib.nerf.train``), SpeechSplit (``talklib.audio.speechsplit``), the lip-sync expert
(``talklib.sync.model``), the Lip-wav generator and the image -> 3DMM regressor (``talklib.condition``)
write their model as a plain dict (config, weights, numbers) with :func:`save` and read it with
:func:`load`; the phoneme recogniser and the contrastive audio encoder are saved with SpeechSplit in the
feature-network bundle (``talklib.condition.extract``), through the same two functions. Small trainers
keep their resumable state with :func:`save_training` / :func:`resume_training`. One place, so that every
model file is written and checked the same way:

- ``save`` serialises with ``torch.save`` to bytes first, then writes them to a temporary name and
  renames (``talklib.outputs.atomic_write_bytes``): a run killed mid-write never leaves a half-written
  file under the final name, and an older checkpoint there stays whole.
- ``load`` reads with ``torch.load(weights_only=True)`` (no code runs from the file) and refuses, with a
  one-line ``UserError`` that names the file, says what is wrong and what to do: a missing file; a
  truncated, foreign or unreadable one; one that holds no dict or lacks the keys its reader needs; one
  whose bytes changed after writing (the CRC-32 of every part of the torch zip file, which torch's reader
  does not check); and one with a NaN or inf in any floating-point tensor, which would otherwise render
  or predict garbage without a word.

Foreign weights (LPIPS, the official SyncNet) are read by their own loaders: they are not talklib
checkpoints and come with their own hints.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Iterable

import torch

from talklib.errors import UserError
from talklib.outputs import atomic_write_bytes

#: what a reader says to do when the caller gives no better hint
_FIX = "give a file that talklib wrote, or retrain"


def save(path: str | Path, blob: dict) -> Path:
    """Write ``blob`` (a dict of tensors, numbers, strings, lists and dicts) to ``path`` atomically.

    The bytes are made in memory before anything is written, so a blob torch cannot save leaves no file;
    the file is written under a temporary name and renamed, so ``path`` is either the old file or the new
    one, never part of one. Returns ``path``."""
    if not isinstance(blob, dict):
        raise TypeError(f"a checkpoint is a dict, not {type(blob).__name__}")
    buf = io.BytesIO()
    torch.save(blob, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, what: str, map_location="cpu", required_keys: Iterable[str] = (),
         fix: str = _FIX) -> dict:
    """Read a checkpoint written by :func:`save`, checked (see the module docstring).

    ``what`` names the file for the user ("NeRF checkpoint", "SpeechSplit model", "sync model");
    ``fix`` says what to do instead (it ends each message); ``required_keys`` must all be in the dict.
    Any failure is a ``UserError`` with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {what} at {path}: the file does not exist; {fix}")
    bad = _damaged_part(path)     # before torch.load: changed bytes in its pickle would read as "foreign"
    if bad is not None:
        raise UserError(f"{what} {path} is damaged ({bad}): its bytes changed after it was written; "
                        "copy it again or retrain")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable files come in many exception types
        raise UserError(f"{path} is not a readable {what} ({type(e).__name__}): it is cut short, damaged "
                        f"or not written by talklib; {fix}") from None
    if not isinstance(blob, dict):
        raise UserError(f"{path} is not a talklib {what}: it holds a {type(blob).__name__}, not a dict; {fix}")
    missing = [k for k in required_keys if k not in blob]
    if missing:
        raise UserError(f"{path} is not a talklib {what}: it lacks {', '.join(map(repr, missing))}; {fix}")
    bad = _non_finite(blob)
    if bad is not None:
        raise UserError(f"{what} {path} is damaged ({bad}): training diverged or its bytes changed after it "
                        "was written; retrain or copy it again")
    return blob


def _damaged_part(path: Path) -> str | None:
    """The first part of a torch zip file whose CRC-32 does not match, or None (also for non-zip files,
    legacy checkpoints and foreign bytes alike, which ``torch.load`` then judges)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = z.testzip()
    except zipfile.BadZipFile:
        return None
    except (OSError, EOFError, ValueError, zipfile.LargeZipFile, NotImplementedError) as e:
        return f"unreadable: {type(e).__name__}"
    return None if name is None else f"checksum mismatch in {name}"


def _non_finite(obj, where: str = "") -> str | None:
    """Where the first NaN or inf sits in the tensors of a nested dict/list, or None."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            return f"NaN or inf in {where or 'a tensor'}"
        return None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        bad = _non_finite(v, f"{where}.{k}" if where else str(k))
        if bad is not None:
            return bad
    return None


def save_training(path: str | Path, config: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  step: int, history: list, generators: dict) -> Path:
    """A small trainer's state, for :func:`resume_training` after a kill: the model's config and weights, the
    optimiser, the step, the loss history and the random generators' states (``torch.Generator`` or
    ``numpy.random.Generator``), so the resumed run takes the very steps the uninterrupted one would."""
    # a NumPy generator's state holds 128-bit integers, which a weights_only load refuses: kept as JSON text
    rng = {k: (g.get_state() if isinstance(g, torch.Generator) else json.dumps(g.bit_generator.state))
           for k, g in generators.items()}
    return save(path, {"config": dict(config), "state": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "step": int(step), "history": list(history), "rng": rng})


def resume_training(path: str | Path, what: str, config: dict, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generators: dict) -> tuple[int, list]:
    """Continue from :func:`save_training`'s file when ``path`` holds one: loads weights, optimiser and
    generator states in place and returns (step, history); (0, []) when there is no file. A file of another
    configuration is refused with a one-line ``UserError``."""
    path = Path(path)
    if not path.is_file():
        return 0, []
    fix = "delete it to train afresh, or give the settings it was trained with"
    blob = load(path, what, required_keys=("config", "state", "optimizer", "step", "history", "rng"), fix=fix)
    if blob["config"] != dict(config):
        diff = sorted(k for k in set(blob["config"]) | set(config) if blob["config"].get(k) != config.get(k))
        raise UserError(f"{what} {path} was trained with other settings (differs in {', '.join(diff)}); {fix}")
    try:
        model.load_state_dict(blob["state"])
        optimizer.load_state_dict(blob["optimizer"])
    except (RuntimeError, ValueError, KeyError):
        raise UserError(f"{what} {path} does not fit this model: {fix}") from None
    for k, g in generators.items():
        if isinstance(g, torch.Generator):
            g.set_state(blob["rng"][k])
        else:
            g.bit_generator.state = json.loads(blob["rng"][k])
    return int(blob["step"]), list(blob["history"])
