"""``task=perf``: the seed article's comparison table, measured for any model.

A :class:`~evalkit.tasks.base.Task` like every other, of type ``Performance``: its
``evaluate`` measures the model itself (``evalkit.tasks.perf.measure``, on the stack's backend,
under the cache) instead of calling an mteb evaluator. Its result goes through the same result store
(``<results>/<variant>/<revision>/perf.json``), figures under ``scores.perf``. The
fingerprint covers the text, the settings and the machine, so a rerun on the same machine
resumes and one on another GPU measures again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from evalkit.errors import DataError
from evalkit.profiling.device import cpu_model, device_info
from evalkit.tasks.perf.settings import PerfSettings
from evalkit.tasks.base import PERFORMANCE, EvalContext, Task, TaskOutput

log = logging.getLogger("evalkit.perf")

TASK_NAME = "perf"
MAIN_METRIC = "latency_1k_ms"  # batch 1, 1,024-token input; lower is better
TEXT_SOURCE = "PRC statutes (raw/laws, LawRefBook/Laws)"


def machine_fingerprint() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu_model(), "gpus": gpus, "torch": torch.__version__}


class PerfTask(Task):
    name, type, main_metric, languages, source = TASK_NAME, PERFORMANCE, MAIN_METRIC, ["cmn-Hans"], "builtin"

    def __init__(self, settings: PerfSettings, raw_dir: Path | None):
        from evalkit.tasks.perf.texts import law_corpus

        self.settings = settings
        self.skipped_rows = {}
        _preimport_backend_libraries()
        if raw_dir is None or not Path(raw_dir).exists():
            raise DataError(f"task perf cuts real statute text from <raw data>/laws; raw data folder not found: {raw_dir}")
        longest = min(max(settings.lengths), settings.max_length or max(settings.lengths))
        # windows of ~3 characters per token leave room for any tokenizer, one per batch row
        self.corpus, self.text_fp = law_corpus(Path(raw_dir), min_chars=longest * 3 * (settings.batch_size + 1) + 20_000)
        blob = json.dumps({"text": self.text_fp, "settings": settings.model_dump(), "machine": machine_fingerprint()},
                          sort_keys=True)
        self.fingerprint = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    def expected_subsets(self) -> dict[str, list[str]]:
        return {TASK_NAME: ["default"]}

    def evaluate(self, encoder, ctx: EvalContext) -> TaskOutput:
        from evalkit.tasks.perf.measure import run_perf
        from evalkit.tasks.perf.table import markdown_tables

        t0 = time.perf_counter()
        model = ctx.stack.model()  # the model itself: the cache above it would time lookups
        load_s = ctx.stack.backend.load_seconds if ctx.model_load_seconds is None else ctx.model_load_seconds
        figures = run_perf(model, ctx.stack.counters, self.corpus, self.settings, load_s,
                           progress=lambda m: log.info("perf: %s", m))
        figures["machine"] = device_info(figures["device"] if figures["device"] != "endpoint" else None)
        figures["text"] = {"source": TEXT_SOURCE, "fingerprint": self.text_fp}
        figures["settings"] = self.settings.model_dump()
        log.info("perf figures:\n%s", markdown_tables([figures]))
        main = (figures.get("at_1k") or {}).get("latency_ms")
        # mteb's layout (split -> list of subset entries with a main_score), so generic result
        # readers can walk it; the task type "Performance" tells them it is no quality score.
        entry = {"hf_subset": "default", "languages": list(self.languages), "main_score": main,
                 "main_metric": MAIN_METRIC, **figures}
        result = {"task_name": TASK_NAME, "kind": "evalkit.perf", "evaluation_time": round(time.perf_counter() - t0, 3),
                  "scores": {TASK_NAME: [entry]}}
        return TaskOutput(task_result=result, main_score=main)


def _preimport_backend_libraries() -> None:
    """Import the local backends' libraries now (before the runner times the model load), so
    ``load_seconds`` compares models rather than which model of a process imported them first."""
    import importlib

    for name in ("transformers", "sentence_transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
