"""Imports flow one way: a talklib module never imports from a later layer (CONVENTIONS.md)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "talklib"
LAYERS = [
    {"errors", "config", "outputs", "checkpoint", "runtime", "notebook"},
    {"data"},
    {"face3d", "audio"},
    {"speaker"},
    {"sync"},
    {"condition"},
    {"nerf"},
    {"codebook", "motion", "oneshot"},
    {"metrics"},
    {"prepare", "pipeline", "book", "train", "render", "scorecard", "live", "cli", "__main__"},
]


def layer_of(part: str) -> int:
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"talklib.{part} is in no layer: add it to tests/test_layering.py")


def test_imports_flow_down_the_layers():
    bad = []
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG).with_suffix("").parts
        if rel == ("__init__",):
            continue
        mine = layer_of(rel[0])
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "talklib" and len(parts) > 1 and layer_of(parts[1]) > mine:
                    bad.append(f"{'/'.join(rel)}.py imports {name}")
    assert not bad, "imports that flow back up: " + "; ".join(bad)


def test_layers_name_only_what_exists():
    exists = {f.stem for f in PKG.glob("*.py")} | {d.name for d in PKG.iterdir() if (d / "__init__.py").is_file()}
    missing = sorted(set().union(*LAYERS) - exists)
    assert not missing, f"tests/test_layering.py lists talklib parts that do not exist: {', '.join(missing)}"


def test_package_docstring_names_only_what_exists():
    import talklib

    flow = talklib.__doc__.split("order imports flow")[1]
    named = {w.strip(" .,:()\n") for w in flow.replace("->", ",").split(",")} - {""}
    named = {n.split()[-1] for n in named}
    assert named <= set().union(*LAYERS), f"talklib/__init__.py names parts no layer has: {named - set().union(*LAYERS)}"
