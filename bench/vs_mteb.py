"""Section 1: wall time of evalkit vs ``mteb.evaluate``, same model, same tasks, same data.

mteb side: what mteb's docs do — a ``SentenceTransformer`` (wrapped as ``mteb.evaluate``
wraps it) and ``mteb.evaluate`` on the tasks, batch size 32, the task objects loaded by
evalkit's own loaders (so both sides score the very same rows). evalkit side: ``runner.run``
with the CLI's profiler, a fresh embedding cache for the first run and the same cache for
the rerun (``overwrite=True``: every score recomputed, every vector a cache hit, so the
model is never loaded). Both times include loading the model and the tasks.

Fairness: before any clock starts, both sides run the tasks at ``task.limit=5`` (imports,
model load from disk, evaluator code paths, torch kernels all warm on both); the
timed runs alternate their order across repeats and the best of each is kept.
"""

from __future__ import annotations

import logging
import shutil
import time
import tempfile
from pathlib import Path

from bench.common import MINILM, MethodTimers, Row, Timer, load_avg, load_task, minilm_cfg, minilm_path, paths

TASKS = ["zh_longdoc", "STSBenchmark", "Banking77Classification"]
WARMUP_LIMIT = 5


def subset_scores(task_name: str, scores: dict) -> dict[str, float]:
    """{task/split/subset: main_score} from mteb's TaskResult layout."""
    return {f"{task_name}/{split}/{e['hf_subset']}": float(e["main_score"])
            for split, entries in scores.items() for e in entries}


def run_mteb(names, limit, data_cache, warm_up: bool = False) -> dict:
    import mteb
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    encode_s: dict[str, float] = {}
    cpu0 = time.process_time()
    with Timer() as t:
        st = SentenceTransformer(minilm_path(), device="cpu")
        st.max_seq_length = MINILM["max_length"]
        model = SentenceTransformerEncoderWrapper(st)  # what mteb.evaluate does with a SentenceTransformer
        inner = model.encode

        def timed_encode(*a, **kw):  # where the time goes: encoding vs mteb's scoring
            t0 = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                name = kw["task_metadata"].name
                encode_s[name] = encode_s.get(name, 0.0) + time.perf_counter() - t0

        model.encode = timed_encode
        tasks = [load_task(n, data_cache, limit).mteb_task for n in names]
        if warm_up:  # classification's code paths, cheaply: one experiment, one text per label
            for task in tasks:
                if hasattr(task, "n_experiments"):
                    task.n_experiments, task.samples_per_label = 1, 1
        result = mteb.evaluate(model, tasks, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32})
    cpu = time.process_time() - cpu0
    scores: dict[str, float] = {}
    for r in result.task_results:
        scores |= {r.task_name: float(r.get_score())} | subset_scores(r.task_name, r.scores)
    return {"seconds": t.seconds, "cpu_s": cpu, "load_after": load_avg(), "scores": scores, "encode_s": sum(encode_s.values()),
            "encode_by_task": encode_s}


def run_evalkit(names, limit, data_cache, root: Path, emb_cache: Path) -> dict:
    from mteb.abstasks.abstask import AbsTask

    from evalkit.callbacks.base import Callback
    from evalkit.encoders.mteb_adapter import MtebEncoderAdapter
    from evalkit.callbacks.profiler import Profiler
    from evalkit.runner import run
    from evalkit.schema import EncodeConfig, Job, TaskConfig
    from evalkit.tasks.mteb_task import MtebTask

    # measured as on mteb's side (time inside the model's encode), plus what evalkit's per-item
    # scores cost: mteb writing its prediction file, evalkit reading it back into items
    timers = MethodTimers(encode=(MtebEncoderAdapter, "encode"), predictions=(AbsTask, "_save_task_predictions"),
                          items=(MtebTask, "_items"))

    class CurrentTask(Callback):
        def on_task_start(self, job, task):
            timers.task = task.name

    job = Job(model=minilm_cfg(), task=TaskConfig(names=names, limit=limit), paths=paths(root, data_cache),
              encode=EncodeConfig(cache="readwrite", cache_path=str(emb_cache)), overwrite=True)
    cpu0 = time.process_time()
    with timers, Timer() as t:
        records = run(job, [Profiler(print_table=False), CurrentTask()])
    cpu = time.process_time() - cpu0
    bad = [(r.task_name, r.error) for r in records if r.status != "ok"]
    if bad:
        raise RuntimeError(f"evalkit run failed: {bad}")
    scores, tasks = {}, {}
    for r in records:
        ev = r.result.evalkit
        scores |= {r.task_name: float(r.main_score)} | subset_scores(r.task_name, r.result.task_result["scores"])
        prof = ev.profile or {}
        n = r.task_name
        tasks[n] = {
            "encode": ev.encode, "model_load_s": ev.wall_seconds.get("model_load"), "task_s": ev.wall_seconds["task"],
            "encode_call_s": timers.seconds["encode"].get(n, 0.0), "forward_s": (prof.get("encode_seconds") or {}).get("total", 0.0),
            "items_s": timers.seconds["predictions"].get(n, 0.0) + timers.seconds["items"].get(n, 0.0),
            "scoring_s": ev.wall_seconds["task"] - timers.seconds["encode"].get(n, 0.0),
            "padding_efficiency": prof.get("padding_efficiency"), "data_load_s": prof.get("data_load_seconds"),
        }
    return {"seconds": t.seconds, "cpu_s": cpu, "load_after": load_avg(), "scores": scores, "tasks": tasks}


def max_diff(a: dict[str, float], b: dict[str, float]) -> float:
    if set(a) != set(b):
        raise RuntimeError(f"score keys differ: {sorted(set(a) ^ set(b))}")
    return max(abs(a[k] - b[k]) for k in a)


def bench_vs_mteb(limit: int | None, data_cache: Path, repeats: int = 1) -> tuple[list[Row], dict]:
    logging.getLogger("mteb").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="evalkit-bench-"))
    mteb_runs, first_runs, reruns = [], [], []
    try:
        for n in TASKS:  # build task data once, outside every timer
            load_task(n, data_cache)
        # warm-up, both sides, untimed (Banking77's train texts ignore task.limit: only mteb's side
        # runs it, shrunk; its evaluator and sklearn imports are the process's, shared by both)
        run_mteb(TASKS, WARMUP_LIMIT, data_cache, warm_up=True)
        run_evalkit(TASKS[:2], WARMUP_LIMIT, data_cache, work / "warm", work / "warm.sqlite")
        for i in range(repeats):
            cache = work / f"emb{i}.sqlite"
            if i % 2 == 0:
                mteb_runs.append(run_mteb(TASKS, limit, data_cache))
                first_runs.append(run_evalkit(TASKS, limit, data_cache, work / f"r{i}", cache))
            else:
                first_runs.append(run_evalkit(TASKS, limit, data_cache, work / f"r{i}", cache))
                mteb_runs.append(run_mteb(TASKS, limit, data_cache))
            reruns.append(run_evalkit(TASKS, limit, data_cache, work / f"rr{i}", cache))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = lambda runs: min(runs, key=lambda r: r["seconds"])  # noqa: E731
    m, f, rr = best(mteb_runs), best(first_runs), best(reruns)
    diff = max(max_diff(x["scores"], m["scores"]) for x in first_runs + mteb_runs)
    diff_rerun = max(max_diff(x["scores"], m["scores"]) for x in reruns)
    size = "full size" if limit is None else f"limit {limit}"
    what = f"{'+'.join(t.replace('Classification', '') for t in TASKS)} ({size}), MiniLM, CPU"
    times = lambda runs: [round(r["seconds"], 1) for r in runs]  # noqa: E731

    short = lambda n: n.replace("Classification", "")  # noqa: E731
    f_enc = sum(t["encode_call_s"] for t in f["tasks"].values())
    f_items = sum(t["items_s"] for t in f["tasks"].values())
    per_task = ", ".join(f"{short(n)} {f['tasks'][n]['encode_call_s']:.0f}/{m['encode_by_task'].get(n, 0):.0f}" for n in TASKS)
    ratio1 = f["seconds"] / m["seconds"]
    note1 = (f"max |score diff| {diff:.1e} over {len(m['scores'])} scores; CPU s {f['cpu_s']:.0f}/{m['cpu_s']:.0f} "
             f"({f['cpu_s'] / m['cpu_s']:.2f}x); s inside model.encode evalkit/mteb: {per_task}; the rest (load, scoring) "
             f"{f['seconds'] - f_enc:.0f}/{m['seconds'] - m['encode_s']:.0f} s, {f_items:.0f} s of it evalkit's per-item scores")
    hits = sum(v["encode"].get("cache_hits", 0) for v in rr["tasks"].values())
    misses = sum(v["encode"].get("cache_misses", 0) for v in rr["tasks"].values())
    loaded = any(v["model_load_s"] is not None for v in rr["tasks"].values())
    rr_items = sum(v["items_s"] for v in rr["tasks"].values())
    rr_mteb = {short(k): round(v["scoring_s"] - v["items_s"], 1) for k, v in rr["tasks"].items()}
    lookups = sum(v["encode_call_s"] for v in rr["tasks"].values())
    ratio2 = rr["seconds"] / m["seconds"]
    note2 = (f"{hits} hits / {misses} misses, model loaded: {'yes' if loaded else 'no'}; max |score diff| {diff_rerun:.1e}; "
             f"cache lookups {lookups:.1f} s; mteb's own scoring {rr_mteb} s = {sum(rr_mteb.values()) / m['seconds']:.2f}x "
             f"(the same work on both sides); evalkit's per-item scores {rr_items:.1f} s = {rr_items / m['seconds']:.2f}x")
    rows = [
        Row("1 vs mteb", f"first run: {what}", f"{f['seconds']:.1f} s", f"{m['seconds']:.1f} s", ratio1,
            "<= 0.8x, same scores (1e-6)", ratio1 <= 0.8 and diff <= 1e-6, note1,
            {"scores": {k: {"mteb": m["scores"][k], "evalkit": f["scores"][k]} for k in m["scores"]},
             "mteb_s": times(mteb_runs), "evalkit_s": times(first_runs), "tasks": f["tasks"], "mteb_encode_s": m["encode_by_task"],
             "cpu_s": {"evalkit": f["cpu_s"], "mteb": m["cpu_s"]},
             "load_after": {"evalkit": [r["load_after"] for r in first_runs], "mteb": [r["load_after"] for r in mteb_runs]}}),
        Row("1 vs mteb", "rerun from cache (every score recomputed)", f"{rr['seconds']:.1f} s", f"{m['seconds']:.1f} s",
            ratio2, "<= 0.1x", ratio2 <= 0.1 and diff_rerun <= 1e-6, note2,
            {"rerun_s": times(reruns), "tasks": rr["tasks"], "cpu_s": rr["cpu_s"]}),
    ]
    return rows, {"first": f, "mteb": m}
