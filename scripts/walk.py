"""The walk of one run through the code: which evalkit files ``runner.run`` calls into, and how
often a call goes back *up* the layers (from a module into one of a higher layer: a hook into a
callback, a layer asking the builder …).

    python scripts/walk.py [model=minilm_l6] [task=zh_longdoc] [limit=3] [--edges]
    python scripts/walk.py --imports      # no run: imports pointing up a layer, and import cycles

Runs the job in-process (outputs and caches in a temporary folder, built task data under
``$EVALKIT_CACHE_DIR`` when set; the data is built once first, untraced: building is the data
layer's own work, and reading the built data is part of the walk) with ``sys.setprofile``
watching every call whose code is in
evalkit; the caller is the nearest evalkit frame up the stack (calls from mteb into our adapter
count from the task that called mteb; the protocol's dispatch helpers ``encode_iter`` and
``collect`` are passed through: a layer calling the one below it through them is that layer's call;
a method counts for the module of its object's class, so an inherited method — the shared encode
loop running a backend's ``forward_ids`` — is the backend's own call). Layers: the order of ``tests/test_layers.py``, with the
module names of older trees mapped onto it (``evalkit.cache`` is a layer of the encoders, …),
so the same command measures any commit.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "evalkit"
# bottom first; older module names listed beside the new ones
ORDER = [
    ["evalkit.errors"],
    ["evalkit", "evalkit.resources", "evalkit.version", "evalkit.console", "evalkit.fields", "evalkit.schema.fields",
     "evalkit.profiling.memory", "evalkit.profiling.device", "evalkit.profiling"],
    ["evalkit.stats"],
    ["evalkit.results"],
    ["evalkit.encoders", "evalkit.batching"],
    ["evalkit.encoders.backends", "evalkit.encoders.sentence_tf", "evalkit.encoders.hf", "evalkit.encoders.openai_compat", "evalkit.encoders.jina"],
    ["evalkit.encoders.parallel", "evalkit.parallel", "evalkit.parallel.pool", "evalkit.parallel.workers",
     "evalkit.parallel.devices"],
    ["evalkit.encoders.layers", "evalkit.cache", "evalkit.chunking", "evalkit.encoders.dedup", "evalkit.encoders.progress",
     "evalkit.tasks.maxp", "evalkit.parallel.shards", "evalkit.parallel.scoring", "evalkit.parallel.store"],
    ["evalkit.encoders.stack"],
    ["evalkit.schema"],
    ["evalkit.variants"],
    ["evalkit.data"],
    ["evalkit.tasks"],
    ["evalkit.tasks.perf", "evalkit.perf", "evalkit.perf.task", "evalkit.perf.measure", "evalkit.perf.texts"],
    ["evalkit.tasks.index"],
    ["evalkit.callbacks", "evalkit.profiling.profiler"],
    ["evalkit.runner"],
    ["evalkit.leaderboard"],
    ["evalkit.reports", "evalkit.perf.report"],
]
RANK = {prefix: rank for rank, prefixes in enumerate(ORDER) for prefix in prefixes}
DISPATCH = {("evalkit.encoders.base", "encode_iter"), ("evalkit.encoders.base", "collect")}


def rank_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    return 0


def module_of(filename: str) -> str | None:
    path = Path(filename)
    if PKG not in path.parents:
        return None
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


ENTRY_POINTS = {"evalkit.__main__", "evalkit.hydra_job", "evalkit.hydra_configs", "evalkit.cli_args",
                "evalkit.leaderboard.hydra_callback", "evalkit.leaderboard.__main__", "evalkit.data.__main__",
                "evalkit.reports.__main__", "evalkit.perf.__main__"}


def owner(frame) -> str | None:
    """The evalkit module of the class of a method's ``self`` (None: no method of an evalkit object)."""
    obj = frame.f_locals.get("self") if frame.f_code.co_argcount else None
    module = type(obj).__module__ if obj is not None else ""
    return module if module.startswith("evalkit") else None


def import_graph() -> dict[str, set[str]]:
    """module -> the evalkit modules it imports (anywhere in it), entry points and own packages left out."""
    import ast

    imports: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        targets = imports.setdefault(module_of(str(path)), set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
    return {m: {t for t in ts if t in imports and t != m and not m.startswith(t + ".")} - ENTRY_POINTS
            for m, ts in imports.items()}


def import_report() -> None:
    graph = import_graph()
    up = sorted((m, t) for m, ts in graph.items() if m not in ENTRY_POINTS for t in ts if rank_of(t) > rank_of(m))
    print(f"modules: {len(graph)}; imports pointing up a layer: {len(up)}")
    for a, b in up:
        print(f"  up: {a} -> {b}")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan: strongly connected groups of more than one module are cycles
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = [stack.pop()]
            while group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    print(f"import cycles: {len(groups)}")
    for g in groups:
        print("  cycle: " + " <-> ".join(g))


def main(argv: list[str]) -> int:
    if "--imports" in argv:
        import_report()
        return 0
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    sys.path.insert(0, str(REPO))
    from evalkit.runner import run
    from evalkit.schema import Job, PathsConfig, TaskConfig
    from evalkit.variants import load_preset
    from evalkit.schema import validate_model_config

    tmp = Path(tempfile.mkdtemp(prefix="evalkit-walk-"))
    preset = {k: v for k, v in (load_preset(args.get("model", "minilm_l6")) or {}).items() if v != "???"}
    job = Job(model=validate_model_config(preset),
              task=TaskConfig(names=[args.get("task", "zh_longdoc")], limit=int(args.get("limit", 3))),
              paths=PathsConfig(root=str(tmp), raw_data=os.environ.get("EVALKIT_RAW_DATA"),
                                cache_dir=os.environ.get("EVALKIT_CACHE_DIR")),
              encode={"cache_path": str(tmp / "embeddings.sqlite")})
    from evalkit.tasks.index import TaskIndex

    TaskIndex(job.task.spec).load_all(job.task, job.paths)  # the task data built (or found), untraced
    files: set[str] = set()
    edges: Counter[tuple[str, str]] = Counter()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = module_of(frame.f_code.co_filename)
        if callee is None:
            return
        files.add(frame.f_code.co_filename)
        if (callee, frame.f_code.co_name) in DISPATCH:
            return
        callee = owner(frame) or callee
        back = frame.f_back
        while back is not None and (module_of(back.f_code.co_filename) is None
                                    or (module_of(back.f_code.co_filename), back.f_code.co_name) in DISPATCH):
            back = back.f_back
        caller = (owner(back) or module_of(back.f_code.co_filename)) if back is not None else None
        if caller is not None and caller != callee:
            edges[(caller, callee)] += 1

    sys.setprofile(profile)
    try:
        records = run(job)
    finally:
        sys.setprofile(None)
    up = sorted((a, b) for a, b in edges if rank_of(b) > rank_of(a))
    print(f"status: {[r.status for r in records]}")
    print(f"evalkit files called: {len(files)}")
    print(f"module-to-module call edges: {len(edges)}; going up a layer: {len(up)} "
          f"({sum(edges[e] for e in up)} calls)")
    if "--edges" in argv:
        for a, b in up:
            print(f"  up: {a} -> {b} ({edges[(a, b)]} calls)")
        for f in sorted(files):
            print(f"  file: {Path(f).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
