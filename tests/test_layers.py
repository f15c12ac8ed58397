"""The package's layers, read from the source (ast): data flows down, no module imports one
above it, and no two modules import each other (directly or around a loop) — except the entry
points (``__main__`` modules, ``hydra_job``, ``hydra_configs``, ``cli_args``, the Hydra
callback), whose job is to wire the layers together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "evalkit"
ENTRY_POINTS = {"evalkit.__main__", "evalkit.hydra_job", "evalkit.hydra_configs", "evalkit.cli_args",
                "evalkit.leaderboard.hydra_callback", "evalkit.leaderboard.__main__", "evalkit.data.__main__",
                "evalkit.reports.__main__"}
# Bottom first: a module imports only modules of its own layer and of the layers below. Every
# module of the package belongs to one (the longest prefix that names it).
LAYERS = [
    ("errors", ["evalkit.errors"]),
    ("tools", ["evalkit", "evalkit.resources", "evalkit.version", "evalkit.console", "evalkit.fields",
               "evalkit.profiling", "evalkit.lexical"]),
    ("stats", ["evalkit.stats"]),
    ("results", ["evalkit.results"]),
    # the encoders' own floors: protocol and shared machinery, backends, the pool, the layers, the builder
    ("encoders", ["evalkit.encoders"]),
    ("encoders.backends", ["evalkit.encoders.backends"]),
    ("encoders.parallel", ["evalkit.encoders.parallel"]),
    ("encoders.layers", ["evalkit.encoders.layers"]),
    ("encoders.stack", ["evalkit.encoders.stack"]),
    ("rerank", ["evalkit.rerank"]),  # the second stage: its config is part of the Job
    ("schema", ["evalkit.schema"]),  # the Job: model configs come from the backends
    ("variants", ["evalkit.variants"]),
    ("data", ["evalkit.data"]),
    ("tasks", ["evalkit.tasks"]),
    ("tasks.perf", ["evalkit.tasks.perf"]),  # a task kind, above the task protocol it implements
    ("tasks.index", ["evalkit.tasks.index"]),  # knows every kind
    ("callbacks", ["evalkit.callbacks"]),
    ("runner", ["evalkit.runner"]),
    ("leaderboard", ["evalkit.leaderboard"]),
    ("reports", ["evalkit.reports"]),
    # SLURM sweeps: used by the Hydra launcher plugin (hydra_plugins/evalkit_slurm), not by the runner
    ("slurm", ["evalkit.slurm"]),
]
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    """module -> the evalkit modules it imports (at the top or inside a function)."""
    out: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        module = _module_name(path)
        targets = out.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)  # `from evalkit.x import module`
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
    modules = set(out)
    return {m: {t for t in ts if t in modules and t != m} for m, ts in out.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    raise KeyError(module)


def test_every_module_has_a_layer():
    named = [p for p in RANK if p != "evalkit"]  # the package's own __init__ is a tool; its modules are not
    missing = [m for m in _imports() if m not in ENTRY_POINTS | {"evalkit"}
               and not any(m == p or m.startswith(p + ".") for p in named)]
    assert not missing, f"add a row to LAYERS for: {sorted(missing)}"


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_no_module_imports_a_layer_above_it(layer):
    rank = [n for n, _ in LAYERS].index(layer)
    bad = sorted((m, t) for m, targets in _imports().items() for t in targets
                 if m not in ENTRY_POINTS and layer_of(m) == rank and layer_of(t) > rank)
    assert not bad, f"{layer} imports upwards: {bad}"


def test_no_import_cycles():
    graph = {m: ts - ENTRY_POINTS for m, ts in _imports().items()}
    for m in graph:  # a package's __init__ re-exports its modules: that is not an edge back up
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_the_entry_points_know_hydra():
    users = set()
    for path in PKG.rglob("*.py"):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n.split(".")[0] in ("hydra", "omegaconf") for n in names):
                users.add(module)
    assert users <= ENTRY_POINTS, sorted(users - ENTRY_POINTS)


def test_importing_the_schema_loads_no_model_library():
    import subprocess
    import sys

    code = ("import sys, evalkit.schema, evalkit.runner; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'mteb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
