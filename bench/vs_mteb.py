"""Row 1: wall time of evalkit vs ``mteb.evaluate``, same model, same tasks, same data.

mteb side: the way mteb's docs run a sentence-transformers model —
``SentenceTransformerEncoderWrapper`` around the loaded model, ``mteb.evaluate`` on the
tasks (data read by evalkit's loaders, so both score the very same rows), batch size 32.
evalkit side: ``runner.run`` on the same tasks (token-budget batching, dedup and the
embedding cache on; a fresh cache for the first run, the same cache for the rerun, which
recomputes every score with ``overwrite=True``). Both times include loading the model
and preparing the tasks.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from bench.common import MINILM, Row, Timer, minilm_path, raw_dir

TASKS = ["zh_longdoc", "STSBenchmark", "Banking77Classification"]


def _prepare(names, limit, cache_dir):
    from evalkit.tasks.registry import TaskConfig, prepare_tasks

    return prepare_tasks(TaskConfig(names=names, limit=limit), raw_dir(), cache_dir)


def run_mteb(names, limit, cache_dir) -> tuple[float, dict[str, float]]:
    import mteb
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    with Timer() as t:
        model = SentenceTransformerEncoderWrapper(SentenceTransformer(minilm_path(), device="cpu"))
        model.model.max_seq_length = MINILM["max_length"]
        tasks = _prepare(names, limit, cache_dir)
        result = mteb.evaluate(
            model, [p.task for p in tasks], cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32}
        )
    scores = {r.task_name: float(r.get_score()) for r in result.task_results}
    return t.seconds, scores


def run_evalkit(names, limit, cache_dir, results_dir, emb_cache) -> tuple[float, dict[str, float], dict]:
    from evalkit.encoders.registry import validate_model_config
    from evalkit.runner import Job, run
    from evalkit.tasks.registry import TaskConfig

    job = Job(
        model=validate_model_config(dict(MINILM)),
        tasks=TaskConfig(names=names, limit=limit),
        results_dir=results_dir,
        raw_data_dir=raw_dir(),
        cache_dir=cache_dir,
        overwrite=True,
        extra={"cache": "readwrite", "cache_path": str(emb_cache)},
    )
    with Timer() as t:
        records = run(job)
    bad = [(r.task_name, r.error) for r in records if r.status != "ok"]
    if bad:
        raise RuntimeError(f"evalkit run failed: {bad}")
    encode = {r.task_name: r.evalkit.get("encode", {}) for r in records}
    return t.seconds, {r.task_name: r.main_score for r in records}, encode


def bench_vs_mteb(limit: int, data_cache: Path) -> list[Row]:
    logging.getLogger("mteb").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="evalkit-bench-"))
    try:
        _prepare(TASKS, limit, data_cache)  # build task data once, outside every timer
        t_mteb, s_mteb = run_mteb(TASKS, limit, data_cache)
        t_first, s_first, enc_first = run_evalkit(TASKS, limit, data_cache, work / "r1", work / "emb.sqlite")
        t_rerun, s_rerun, enc_rerun = run_evalkit(TASKS, limit, data_cache, work / "r2", work / "emb.sqlite")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    diff = max(abs(s_first[k] - s_mteb[k]) for k in s_mteb)
    diff_rerun = max(abs(s_rerun[k] - s_mteb[k]) for k in s_mteb)
    what = f"{'+'.join(t.replace('Classification', '') for t in TASKS)} (limit {limit}), MiniLM, CPU"
    scores = {k: {"mteb": s_mteb[k], "evalkit": s_first[k], "evalkit_rerun": s_rerun[k]} for k in s_mteb}
    hits = sum(e.get("cache_hits", 0) for e in enc_rerun.values())
    return [
        Row(
            "1 vs mteb", f"first run: {what}", f"{t_first:.1f} s", f"{t_mteb:.1f} s", t_first / t_mteb,
            "<= 0.9x", t_first / t_mteb <= 0.9, f"max |score diff| {diff:.1e}",
            {"scores": scores, "encode_first": enc_first},
        ),
        Row(
            "1 vs mteb", "rerun (same cache, every score recomputed)", f"{t_rerun:.1f} s", f"{t_mteb:.1f} s",
            t_rerun / t_mteb, "<= 0.1x", t_rerun / t_mteb <= 0.1,
            f"{hits} cache hits, max |score diff| {diff_rerun:.1e}", {"encode_rerun": enc_rerun},
        ),
    ]
