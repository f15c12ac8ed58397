"""mteb benchmarks by name (``task.benchmark='MTEB(cmn, v1)'``): their tasks, through mteb's
own registry (``mteb.get_benchmark``). Offline, only tasks evalkit has data for can run: the
run says at once which have none, and runs the rest only when asked (``task.missing=skip``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from evalkit.errors import ConfigError, unknown_name

log = logging.getLogger("evalkit.tasks")


def benchmark_tasks(name: str) -> list[tuple[str, list[str]]]:
    """(task name, the benchmark's subsets of it) for every task of benchmark ``name``."""
    import mteb

    try:
        bench = mteb.get_benchmark(name)
    except (KeyError, ValueError):
        valid = [b.name for b in mteb.get_benchmarks()]
        raise unknown_name("benchmark", name, valid) from None
    return [(t.metadata.name, list(t.hf_subsets)) for t in bench.tasks]


def benchmark_task_names(name: str, index, cfg, reachable: Callable[[], bool]) -> list[str]:
    """The benchmark's tasks that can run here; records their subsets on ``index``."""
    from evalkit.tasks.mteb_mirror import MIRRORS

    tasks = benchmark_tasks(name)
    online = reachable()
    runnable, missing, partial = [], [], []
    for task, subsets in tasks:
        if online:
            runnable.append(task)
            index.benchmark_subsets[task] = subsets
        elif task in MIRRORS:
            mirrored = MIRRORS[task][0]
            keep = subsets if mirrored is None else [s for s in subsets if s in mirrored]
            if not keep:
                missing.append(task)
                continue
            if mirrored is not None and len(keep) < len(subsets):
                partial.append(f"{task} ({len(keep)} of {len(subsets)} subsets: {', '.join(keep)})")
            runnable.append(task)
            index.benchmark_subsets[task] = keep if mirrored is not None else None
        else:
            missing.append(task)
    if missing:
        shown = ", ".join(missing[:12]) + (f", … ({len(missing) - 12} more)" if len(missing) > 12 else "")
        msg = (f"benchmark {name!r}: {len(missing)} of {len(tasks)} tasks have no data here (the Hugging Face Hub "
               f"is unreachable and evalkit has no local mirror of them): {shown}")
        if cfg.missing == "error":
            hint = (f"run the {len(runnable)} that do with task.missing=skip" if runnable
                    else "none of its tasks can run offline")
            raise ConfigError(f"{msg}. {hint.capitalize()} ({', '.join(runnable) or '-'}).")
        log.warning("%s; skipped (task.missing=skip), running %s", msg, ", ".join(runnable) or "nothing")
    if partial:
        log.warning("benchmark %r: only part of %s is mirrored here", name, "; ".join(partial))
    if not runnable:
        raise ConfigError(f"benchmark {name!r}: none of its {len(tasks)} tasks has data here")
    return runnable
