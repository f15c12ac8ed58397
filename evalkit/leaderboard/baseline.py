"""``leaderboard.baseline_bm25`` (default true): a BM25 row beside the models of a sweep.

Every job of a multirun that runs retrieval tasks with an embedding model also runs
``model=bm25`` on those tasks, with the job's own task settings (subsets, limit), into the same
results folder, and writes a sweep manifest for it (``<job dir>/bm25_baseline/evalkit_job.json``),
so the sweep's leaderboard has the lexical baseline as a row and pairs every model with it.
BM25 takes seconds; a finished BM25 result is reused (the result store resumes), so a sweep of
several models over the same tasks computes it once.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from evalkit.leaderboard.scan import MANIFEST_NAME
from evalkit.schema import EncodeConfig, Job, validate_model_config

BM25 = {"name": "bm25", "backend": "bm25"}
FOLDER = "bm25_baseline"


def retrieval_tasks(job: Job) -> list[str]:
    """The job's tasks that rank documents (built-in, user spec or mteb): BM25 can run those."""
    from evalkit.tasks.index import TaskIndex
    from evalkit.tasks.spec import load_spec

    index = TaskIndex(job.task.spec)
    out = []
    for name in index.resolve_names(job.task):
        entry = index.entries.get(name)
        if entry is not None and entry.kind in ("builtin", "user"):
            kind = load_spec(entry.path)[0].type
        elif entry is not None:  # perf, or an mteb mirror (not retrieval)
            kind = "Retrieval" if entry.kind == "mteb-mirror" and _mteb_type(name) == "Retrieval" else entry.kind
        else:
            kind = _mteb_type(name)
        if kind == "Retrieval":
            out.append(name)
    return out


def _mteb_type(name: str) -> str | None:
    import mteb

    try:
        return mteb.get_task(name).metadata.type
    except Exception:  # not an mteb task name: the job itself says so
        return None


def baseline_job(job: Job) -> Job | None:
    """The BM25 job beside ``job``: None when it is BM25 already, reranks, or has no retrieval task."""
    if job.model.backend == "bm25" or job.rerank is not None:
        return None
    tasks = retrieval_tasks(job)
    if not tasks:
        return None
    task = job.task.model_copy(update={"names": tasks, "benchmark": None})
    # encode settings are the vectors' (chunking, cache): BM25 has none, and one result serves every job
    return job.model_copy(update={"model": validate_model_config(BM25), "task": task, "encode": EncodeConfig(),
                                  "overwrite": False})


def run_baseline(job: Job, job_dir: Path) -> Path | None:
    """Run BM25 beside ``job`` and write its manifest under ``job_dir``; the manifest's path."""
    from evalkit.results import atomic_write_json
    from evalkit.runner import run
    from evalkit.variants import variant_of

    bm25 = baseline_job(job)
    if bm25 is None:
        return None
    started = time.time()
    records = run(bm25, [])
    variant = variant_of(bm25)
    manifest = {
        "evalkit_job": 1, "status": "completed" if all(r.status == "ok" for r in records) else "failed",
        "overrides": ["model=bm25", "(leaderboard.baseline_bm25)"], "pid": os.getpid(), "host": socket.gethostname(),
        "started_at": started, "ended_at": time.time(), "model": variant.label, "model_name": "bm25",
        "variant_id": variant.id, "revision": None, "tasks": bm25.task.names, "config_hash": bm25.config_hash(),
        "results_dir": str(Path(bm25.paths.results).resolve()), "model_config": bm25.model.model_dump(mode="json"),
    }
    path = job_dir / FOLDER / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, manifest)
    return path
