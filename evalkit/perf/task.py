"""``task=perf``: the seed article's comparison table, measured for any model.

A :class:`PreparedTask` whose ``runner`` measures the loaded encoder (``evalkit.perf.
measure``) instead of calling an mteb evaluator. Its result goes through the same results
writer as every task (``<results>/<model>/<revision>/perf.json``); the figures are under
``scores.perf``. The task's fingerprint covers the text, the settings and the machine, so a
rerun on the same machine resumes, and one on another GPU measures again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

from pydantic import ValidationError

from evalkit.encoders.registry import format_validation_error
from evalkit.errors import ConfigError, DataError
from evalkit.perf.device import cpu_model, device_info
from evalkit.perf.measure import PerfSettings, run_perf
from evalkit.tasks.prepared import PreparedTask

log = logging.getLogger("evalkit.perf")

TASK_NAME = "perf"
TASK_TYPE = "Performance"  # result readers (leaderboard) skip tasks of this type
MAIN_METRIC = "latency_1k_ms"  # batch 1, 1,024-token input; lower is better


def perf_settings(raw: dict | None) -> PerfSettings:
    try:
        return PerfSettings(**(raw or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid task.perf settings:\n{format_validation_error(exc)}") from None


def machine_fingerprint() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu_model(), "gpus": gpus, "torch": torch.__version__}


def prepare_perf_task(cfg, raw_dir: Path | None) -> PreparedTask:
    from evalkit.perf.texts import law_corpus

    settings = perf_settings(cfg.perf)
    _preimport_backend_libraries()
    if raw_dir is None or not Path(raw_dir).exists():
        raise DataError(f"task perf cuts real statute text from <raw data>/laws; raw data folder not found: {raw_dir}")
    longest = min(max(settings.lengths), settings.max_length or max(settings.lengths))
    # windows of ~3 characters per token leave room for any tokenizer, one per batch row
    corpus, text_fp = law_corpus(Path(raw_dir), min_chars=longest * 3 * (settings.batch_size + 1) + 20_000)
    blob = json.dumps({"text": text_fp, "settings": settings.model_dump(), "machine": machine_fingerprint()}, sort_keys=True)
    metadata = SimpleNamespace(name=TASK_NAME, type=TASK_TYPE, main_score=MAIN_METRIC, languages=["cmn-Hans"], prompt=None)
    task = PreparedTask(
        name=TASK_NAME,
        task=SimpleNamespace(metadata=metadata),  # no mteb task: the runner below measures
        fingerprint="sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16],
        source="builtin",
        extra={"text_fingerprint": text_fp, "text_chars": len(corpus)},
    )
    task.runner = lambda encoder, job, info: run_perf_task(encoder, info, corpus, settings, text_fp)
    return task


def _preimport_backend_libraries() -> None:
    """Import the local backends' libraries now (before the runner times the model load), so
    ``load_seconds`` compares models rather than which model of a process imported them first."""
    import importlib

    for name in ("transformers", "sentence_transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def run_perf_task(encoder, info, corpus: str, settings: PerfSettings, text_fp: str) -> tuple[dict, float | None]:
    from evalkit.perf.report import markdown_tables

    t0 = time.perf_counter()
    figures = run_perf(encoder, corpus, settings, info.model_load_seconds, progress=lambda m: log.info("perf: %s", m))
    figures["machine"] = device_info(figures["device"] if figures["device"] != "endpoint" else None)
    figures["text"] = {"source": "PRC statutes (raw/laws, LawRefBook/Laws)", "fingerprint": text_fp}
    figures["settings"] = settings.model_dump()
    print("\n" + markdown_tables([figures]))
    main = (figures.get("at_1k") or {}).get("latency_ms")
    # mteb's layout (split -> list of subset entries with a main_score), so generic result
    # readers can walk it; "kind" and evalkit.task.type = "Performance" tell them it is no score.
    entry = {"hf_subset": "default", "languages": ["cmn-Hans"], "main_score": main, "main_metric": MAIN_METRIC, **figures}
    result = {
        "task_name": TASK_NAME,
        "kind": "evalkit.perf",
        "evaluation_time": round(time.perf_counter() - t0, 3),
        "scores": {TASK_NAME: [entry]},
    }
    return result, main
