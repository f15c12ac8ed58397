"""Task names -> PreparedTask: built-in/user specs first, then MTEB tasks (local mirror, then Hub)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.encoders.registry import format_validation_error
from evalkit.errors import ConfigError, unknown_name
from evalkit.tasks import builtin, mteb_mirror
from evalkit.tasks.prepared import PreparedTask

# Query instructions for instruction-following models on the mirrored MTEB tasks, as in
# Qwen3-Embedding's own evaluation (its task_prompts.json); other MTEB tasks fall back to
# the task's metadata.prompt.
MTEB_INSTRUCTIONS = {
    "STSBenchmark": "Retrieve semantically similar text.",
    "STSBenchmarkMultilingualSTS": "Retrieve semantically similar text.",
    "Banking77Classification": "Given a online banking query, find the corresponding intents",
    "Tatoeba": "Retrieve parallel sentences.",
}


class TaskConfig(BaseModel):
    """Fields of a ``task`` config (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    names: list[str]
    subsets: list[str] | None = None  # hf subsets / built-in subsets to keep
    limit: int | None = None  # cap on evaluated rows (queries, pairs) for quick runs and tests
    instruction: str | None = None  # override every task's query instruction
    spec: str | None = None  # path to a user task spec (YAML), see README
    # Settings of the latency/memory comparison task (evalkit.perf.measure.PerfSettings). Kept
    # out of model_dump (so out of the config hash): the perf task's fingerprint carries them.
    perf: dict[str, Any] | None = Field(default=None, exclude=True)


def validate_task_config(raw: dict) -> TaskConfig:
    try:
        return TaskConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid task config:\n{format_validation_error(exc)}") from None


def known_task_names() -> list[str]:
    return sorted(set(builtin.task_names()) | set(mteb_mirror.MIRRORS) | {"perf"})


def prepare_tasks(cfg: TaskConfig, raw_dir: Path | None, cache_dir: Path | None = None) -> list[PreparedTask]:
    """Resolve every name before any model is loaded, so a typo fails in a second."""
    tasks = []
    for name in cfg.names:
        t0 = time.perf_counter()
        tasks.append(prepare_task(name, cfg, raw_dir, cache_dir))
        tasks[-1].extra["data_load_seconds"] = time.perf_counter() - t0  # for the profiler
    return tasks


def prepare_task(name: str, cfg: TaskConfig, raw_dir: Path | None, cache_dir: Path | None = None) -> PreparedTask:
    if name == "perf":  # latency/memory vs length comparison: own runner, no mteb evaluator
        from evalkit.perf.task import prepare_perf_task

        return prepare_perf_task(cfg, raw_dir)
    if name in builtin.task_names() or cfg.spec:
        task = builtin.load_task(name, cfg, raw_dir, cache_dir)
    elif mteb_mirror.has_mirror(name) and raw_dir is not None and Path(raw_dir).exists():
        mteb_task, fp = mteb_mirror.load_mirrored_task(name, Path(raw_dir), subsets=cfg.subsets, limit=cfg.limit)
        task = PreparedTask(name=name, task=mteb_task, fingerprint=fp, source="mteb-mirror")
    else:
        task = _hub_task(name, cfg, raw_dir)
    if cfg.instruction is not None:
        task.instruction = cfg.instruction
    elif task.instruction is None:
        task.instruction = MTEB_INSTRUCTIONS.get(name) or _metadata_prompt(task)
    return task


def _hub_task(name: str, cfg: TaskConfig, raw_dir: Path | None) -> PreparedTask:
    import mteb

    try:
        mteb_task = mteb.get_task(name)
    except (KeyError, ValueError):
        err = unknown_name("task", name, known_task_names())
        raise type(err)(f"{err} (or any MTEB task name, with the Hub reachable)") from None
    if not hub_reachable():
        hint = (
            f"set EVALKIT_RAW_DATA (or paths.raw_data) to the raw-data folder (now: {raw_dir})"
            if mteb_mirror.has_mirror(name)
            else f"tasks with a local mirror: {', '.join(sorted(mteb_mirror.MIRRORS))}"
        )
        raise ConfigError(
            f"task {name!r}: the Hugging Face Hub is unreachable (or HF_HUB_OFFLINE=1) and no local data "
            f"is configured; {hint}."
        )
    if cfg.subsets:
        mteb_task = mteb_task.filter_languages(None, hf_subsets=cfg.subsets)
    revision = (mteb_task.metadata.dataset or {}).get("revision", "unknown")
    return PreparedTask(name=name, task=mteb_task, fingerprint=f"hub:{revision}", source="hub")


def _metadata_prompt(task: PreparedTask) -> str | None:
    prompt = task.task.metadata.prompt
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        return prompt.get("query")
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect instead of a screen of retries from huggingface_hub."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
