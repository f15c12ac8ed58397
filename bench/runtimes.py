"""Section 8: MiniLM's runtimes against torch fp32 — throughput in one process on the same texts,
and the quality each costs on the task, with its paired interval.

Throughput: the backends alone (no cache, no layers), all loaded in this process, warmed, then
timed in alternating order (round r runs them in rotated order), the best round of each kept;
texts: code_search's documents (or ``--limit`` queries' worth of them). Quality: the runner on
code_search once per runtime (one embedding cache, results in one folder), then the leaderboard's
paired comparison against fp32 (evalkit.leaderboard.compare: bootstrap interval, Holm p).
ONNX and OpenVINO rows say why they are missing (docs/deploy.md, "Runtimes left out").
"""

from __future__ import annotations

import time

from bench.common import Row, load_task, minilm_cfg, paths, task_texts

RUNTIMES = {  # label -> model config overrides
    "torch fp32": {},
    "torch dynamic int8": {"runtime": "torch_dynamic_int8"},
    "torch bfloat16": {"dtype": "bfloat16"},
}
TASK = "code_search"


def _texts(data_cache, limit: int | None, n_max: int) -> list[str]:
    texts = task_texts(load_task(TASK, data_cache, limit=limit))
    docs = [t for key, part in sorted(texts.items()) if key.endswith("/corpus") for t in part]
    return docs[:n_max]


def _throughput(texts: list[str], rounds: int) -> dict[str, list[float]]:
    from evalkit.encoders.base import Role
    from evalkit.encoders.stack import build_backend

    backends = {label: build_backend(minilm_cfg(**kw)) for label, kw in RUNTIMES.items()}
    for backend in backends.values():  # warm-up: allocator, threads, first-call paths
        backend.encode(texts[:64], role=Role.DOCUMENT)
    seconds: dict[str, list[float]] = {label: [] for label in backends}
    labels = list(backends)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            t0 = time.perf_counter()
            backends[label].encode(texts, role=Role.DOCUMENT)
            seconds[label].append(time.perf_counter() - t0)
    for backend in backends.values():
        backend.close()
    return seconds


def _quality(data_cache, limit: int | None) -> dict[str, object]:
    """label -> the leaderboard's comparison against fp32 on TASK (None for fp32 itself)."""
    from evalkit.leaderboard import build_leaderboard
    from evalkit.runner import run
    from evalkit.schema import EncodeConfig, Job, TaskConfig
    from evalkit.variants import variant_of

    root = data_cache.parent / "runtimes"
    jobs = {label: Job(model=minilm_cfg(**kw), task=TaskConfig(names=[TASK], limit=limit),
                       paths=paths(root, data_cache), encode=EncodeConfig()) for label, kw in RUNTIMES.items()}
    for job in jobs.values():
        run(job, [])
    rows = {label: variant_of(job).label for label, job in jobs.items()}
    board = build_leaderboard([root / "results"], baseline=rows["torch fp32"])
    by_row = {c.model_a: c for c in board.comparisons if c.task == TASK and c.model_b == rows["torch fp32"]}
    return {label: by_row.get(row) for label, row in rows.items()}


def bench_runtimes(data_cache, limit: int | None = None, rounds: int = 3, n_max: int = 4096) -> list[Row]:
    texts = _texts(data_cache, limit, n_max)
    seconds = _throughput(texts, rounds)
    quality = _quality(data_cache, limit)
    base = min(seconds["torch fp32"])
    rows = []
    for label, times in seconds.items():
        if label == "torch fp32":
            continue
        best, comp = min(times), quality.get(label)
        delta = ("quality: not compared" if comp is None or comp.diff is None else
                 f"nDCG@10 Δ {100 * comp.diff:+.2f} [{100 * comp.ci_low:+.2f}, {100 * comp.ci_high:+.2f}], "
                 f"p(Holm) {comp.p_holm:.3g}, W/T/L {comp.wins}/{comp.ties}/{comp.losses}")
        rows.append(Row("8 runtimes", f"MiniLM {label} vs torch fp32, {len(texts)} {TASK} documents (CPU)",
                        f"{len(texts) / best:.1f} texts/s", f"{len(texts) / base:.1f} texts/s", base / best,
                        "measured", None, f"{delta}; runs {[round(t, 1) for t in times]} s",
                        {"seconds": times, "fp32_seconds": seconds["torch fp32"]}))
    from evalkit.encoders.backends.sentence_tf import UNAVAILABLE_RUNTIMES

    for name in ("onnx", "onnx_int8", "openvino"):
        rows.append(Row("8 runtimes", f"MiniLM {name} vs torch fp32", "-", "-", None, "measured", None,
                        f"not available: {UNAVAILABLE_RUNTIMES[name]}"))
    return rows
