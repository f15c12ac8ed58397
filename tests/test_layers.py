"""The package's layers, read from the source (ast): data flows down, and no module imports
one above it — except the entry points (``__main__``, ``hydra_job``, the Hydra callbacks,
``python -m evalkit.data``), whose job is to wire the layers together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "evalkit"
ENTRY_POINTS = {"evalkit.__main__", "evalkit.hydra_job", "evalkit.leaderboard.hydra_callback", "evalkit.data.__main__",
                "evalkit.cli_args"}
# a module of the layer on the left never imports one of the packages on the right
FORBIDDEN = {
    "errors": {"*"},
    "schema": {"results", "encoders", "tasks", "runner", "leaderboard", "callbacks", "perf", "parallel", "data"},
    "stats": {"results", "encoders", "tasks", "runner", "leaderboard", "callbacks", "schema"},
    "results": {"encoders", "tasks", "runner", "leaderboard", "callbacks", "perf", "parallel", "reports"},
    "encoders": {"tasks", "runner", "leaderboard", "callbacks", "perf", "reports", "hydra_job", "variants"},
    "cache": {"tasks", "runner", "leaderboard", "callbacks", "perf", "reports"},
    "tasks": {"runner", "leaderboard", "callbacks", "reports", "hydra_job", "variants", "parallel"},
    "runner": {"leaderboard", "reports", "hydra_job", "__main__"},
    "callbacks": {"runner", "leaderboard", "reports", "hydra_job"},
}


def _imports() -> list[tuple[str, str]]:
    out = []
    for path in PKG.rglob("*.py"):
        module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            out += [(module, n) for n in names if n.startswith("evalkit.")]
    return out


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_it(layer):
    bad = [(m, target) for m, target in _imports() if _layer(m) == layer and m not in ENTRY_POINTS
           and _layer(target) != layer and (FORBIDDEN[layer] == {"*"} or _layer(target) in FORBIDDEN[layer])]
    assert not bad, f"{layer} imports upwards: {bad}"


def test_only_the_entry_points_know_hydra():
    users = set()
    for path in PKG.rglob("*.py"):
        module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n.split(".")[0] in ("hydra", "omegaconf") for n in names):
                users.add(module)
    assert users <= ENTRY_POINTS, sorted(users - ENTRY_POINTS)
