"""Presets and the parameter schema the notebooks are run with.

Every size a notebook uses comes from here: the notebook's ``parameters`` cell lists the names it
reads (with the ``small`` value as its default), and ``python -m talklib reproduce`` fills them from a
preset plus the user's overrides. ``validate`` refuses unknown names and wrong types *before* anything
runs, because papermill alone only warns.

Two presets:

- ``small``: 2 CPU cores, the whole pipeline in about 15 minutes (what ``make test`` and
  ``make reproduce`` use);
- ``full``: one GPU, paper-scale sizes.

This module imports nothing heavy (no torch) so that the command line can validate fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from talklib.errors import UserError

PRESETS = ("small", "full")


class ConfigError(UserError, ValueError):
    """A bad preset, parameter name or value. Its message is one line that says what to do."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    small: Any
    full: Any
    help: str


# One list, grouped by the notebook that owns the parameter. A parameter used by several notebooks
# lives in "common". Keep names plain and prefixed by their concern (synth_, audio_, nerf_, sync_ ...).
PARAMS: list[Param] = [
    # --- common: every notebook ------------------------------------------------------------------
    Param("run_dir", str, "runs/dev", "runs/dev", "folder this run writes metrics, figures and videos to"),
    Param("data_dir", str, "data/synthetic/small", "data/synthetic/full",
          "the synthetic speaker's dataset folder (made by notebook 01 if missing)"),
    Param("preset", str, "small", "full", "the preset these values come from (small or full)"),
    Param("seed", int, 0, 0, "seed for every random number generator"),
    Param("device", str, "auto", "auto", "torch device: auto (CUDA when present), cpu, cuda, cuda:N"),
    # --- 01 synthetic speaker and 3DMM priors (issue 3) ------------------------------------------
    # --- 02 audio disentanglement (issue 4) ------------------------------------------------------
    # --- 03 conditional NeRF (issue 5) -----------------------------------------------------------
    # --- 05 lip-sync discriminator and evaluation (issue 6) --------------------------------------
]

_BY_NAME = {p.name: p for p in PARAMS}


def names() -> list[str]:
    """All parameter names, in schema order."""
    return [p.name for p in PARAMS]


def preset(name: str) -> dict[str, Any]:
    """The parameter values of preset ``name`` (``small`` or ``full``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return {p.name: getattr(p, name) for p in PARAMS}


def parse_value(name: str, text: str) -> Any:
    """Turn the text of a ``-p name=value`` override into the parameter's type."""
    param = _param(name)
    if param.type is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"parameter {name} takes true or false, not {text!r}")
    try:
        return param.type(text)
    except ValueError:
        raise ConfigError(
            f"parameter {name} takes a {param.type.__name__}, not {text!r} ({param.help})"
        ) from None


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check names and types of ``params``; return them with ints widened to floats where needed."""
    out = {}
    for name, value in params.items():
        param = _param(name)
        if param.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if param.type is not bool and isinstance(value, bool) or not isinstance(value, param.type):
            raise ConfigError(
                f"parameter {name} takes a {param.type.__name__}, not {type(value).__name__} "
                f"{value!r} ({param.help})"
            )
        out[name] = value
    return out


def _param(name: str) -> Param:
    if name not in _BY_NAME:
        raise ConfigError(f"unknown parameter {name!r}: known parameters are {', '.join(names())}")
    return _BY_NAME[name]
