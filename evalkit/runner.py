"""The job loop: one model, its tasks, mteb scoring, result files. No Hydra in here.

``run(job, callbacks)`` takes validated plain objects, so tests and other programs call it
directly; ``evalkit.__main__`` only turns a Hydra config into a :class:`Job`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import evalkit
from evalkit.callbacks.base import Callback, CallbackList, JobInfo, TaskRecord
from evalkit.encoders.mteb_adapter import MtebEncoderAdapter
from evalkit.encoders.registry import build_encoder
from evalkit.encoders.wrappers import scoring_run_settings, wrap_encoder
from evalkit.errors import EvalkitError
from evalkit.results import read_result, redact, result_path, write_failure, write_result
from evalkit.tasks.prepared import PreparedTask
from evalkit.tasks.registry import TaskConfig, prepare_tasks

log = logging.getLogger("evalkit")


@dataclass
class Job:
    model: BaseModel  # a backend's validated Config (evalkit.encoders.registry.validate_model_config)
    tasks: TaskConfig
    results_dir: Path
    raw_data_dir: Path | None = None
    cache_dir: Path | None = None
    overwrite: bool = False  # recompute even when a complete result exists
    extra: dict[str, Any] = field(default_factory=dict)  # more config that changes vectors (cache, batching…)

    def config_hash(self) -> str:
        """Hash of everything that can change a score: model config, task config, extras."""
        payload = {
            "model": redact(self.model.model_dump()),
            "tasks": self.tasks.model_dump(exclude={"names"}),
            # Only run settings that change vectors; cache mode, token budget, dedup do not.
            "extra": scoring_run_settings(self.extra),
        }
        # Fields that change speed or logging but never a vector stay out of the hash.
        for volatile in ("batch_size", "device", "concurrency", "timeout_s", "max_retries"):
            payload["model"].pop(volatile, None)
        blob = json.dumps(payload, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(job: Job, callbacks: list[Callback] | None = None) -> list[TaskRecord]:
    hooks = CallbackList(callbacks)
    model_name = job.model.name
    revision = getattr(job.model, "revision", None)
    config_hash = job.config_hash()
    try:
        tasks = prepare_tasks(job.tasks, job.raw_data_dir, job.cache_dir)
    except Exception as exc:  # a job that fails as a whole still leaves a reason per task
        _record_failures(job, config_hash, job.tasks.names, exc, stage="prepare")
        raise
    info = JobInfo(model_name=model_name, config_hash=config_hash, task_names=[t.name for t in tasks])
    hooks.on_job_start(info)

    records: list[TaskRecord] = []
    todo: list[PreparedTask] = []
    for task in tasks:
        done = None if job.overwrite else _complete_result(job, task, config_hash, revision)
        if done is not None:
            records.append(done)
        else:
            todo.append(task)

    if todo:
        t0 = time.perf_counter()
        try:
            encoder = wrap_encoder(build_encoder(job.model, hooks=hooks), job)
        except Exception as exc:
            _record_failures(job, config_hash, todo, exc, stage="model_load")
            if isinstance(exc, EvalkitError):
                raise
            # One clear line for the user (and the next job of a sweep goes on); the
            # traceback is in the failure records.
            raise EvalkitError(f"model {model_name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
        info.model_load_seconds = time.perf_counter() - t0
        info.model_meta = encoder.meta
        hooks.on_model_loaded(info)
        try:
            for task in todo:
                records.append(_run_task(job, info, encoder, task, hooks))
        except Exception as exc:  # e.g. the server went away: this and the remaining tasks fail
            finished = {r.task_name for r in records}
            _record_failures(job, config_hash, [t for t in todo if t.name not in finished], exc, stage="task")
            raise
        finally:
            encoder.close()

    records.sort(key=lambda r: info.task_names.index(r.task_name))
    hooks.on_job_end(info, records)
    return records


def _record_failures(job: Job, config_hash: str, tasks: list, exc: BaseException, stage: str) -> None:
    """Persist why these tasks have no result (results.failure_path), for the leaderboard."""
    for task in tasks:
        _write_failure(job, config_hash, task, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=8), stage)


def _write_failure(job: Job, config_hash: str, task, error: str, tb: str, stage: str) -> Path | None:
    prepared = task if isinstance(task, PreparedTask) else None
    record = {
        "status": "failed",
        "stage": stage,  # prepare | model_load | task
        "error": error,
        "traceback": tb,
        "config_hash": config_hash,
        "model_config": redact(job.model.model_dump(mode="json")),
        "task_info": _task_info(job, prepared) if prepared else None,
        "versions": versions(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    name = prepared.name if prepared else str(task)
    try:
        return write_failure(job.results_dir, job.model.name, getattr(job.model, "revision", None), name, record)
    except OSError as write_exc:  # never hide the original error behind this one
        log.warning("could not write the failure record of %s: %s", name, write_exc)
        return None


def _task_info(job: Job, task: PreparedTask) -> dict:
    return {
        "name": task.name,
        "type": task.type,
        "languages": list(getattr(task.task, "languages", None) or task.languages),  # evaluated subsets only
        "main_metric": task.main_score,
        "fingerprint": task.fingerprint,
        "source": task.source,
        "limit": job.tasks.limit,
    }


def _complete_result(job: Job, task: PreparedTask, config_hash: str, revision) -> TaskRecord | None:
    """A result already on disk for this exact config and data, or None."""
    path = result_path(job.results_dir, job.model.name, revision, task.name)
    data = read_result(path)
    if not data:
        return None
    block = data["evalkit"]
    if block.get("config_hash") != config_hash or block.get("task", {}).get("fingerprint") != task.fingerprint:
        return None
    if data.get("task_name") != task.name or not _covers_all_subsets(data, task):
        log.warning("%s: incomplete or foreign result file, recomputing", path)
        return None
    return TaskRecord(
        model_name=job.model.name,
        task_name=task.name,
        status="skipped",
        main_score=block.get("main_score"),
        main_metric=task.main_score,
        scores=data,
        evalkit=block,
        path=str(path),
    )


def _covers_all_subsets(data: dict, task: PreparedTask) -> bool:
    """Every split and subset the task evaluates has a main score in the file."""
    if getattr(task, "runner", None) is not None:  # own measuring code, not mteb's layout
        return True
    splits, subsets = getattr(task.task, "eval_splits", None), getattr(task.task, "hf_subsets", None)
    scores = data.get("scores") or {}
    for split in splits or []:
        entries = scores.get(split) or []
        have = {e.get("hf_subset") for e in entries if isinstance(e, dict) and e.get("main_score") is not None}
        if not set(subsets or []) <= have:
            return False
    return True


def _run_task(job: Job, info: JobInfo, encoder, task: PreparedTask, hooks: CallbackList) -> TaskRecord:
    import mteb

    hooks.on_task_start(info, task)
    adapter = MtebEncoderAdapter(encoder, {task.name: task.instruction})
    record = TaskRecord(model_name=job.model.name, task_name=task.name, status="ok", main_metric=task.main_score)
    t0 = time.perf_counter()
    try:
        if task.runner is not None:  # a task with its own measuring code (perf), not an mteb evaluator
            scores, main_score = task.runner(encoder, job, info)
        else:
            model_result = mteb.evaluate(adapter, task.task, cache=None, show_progress_bar=False, raise_error=True)
            task_result = model_result.task_results[0]
            scores, main_score = _task_result_json(task_result), float(task_result.get_score())
    except EvalkitError:
        raise
    except Exception as exc:  # one task failing must not lose the others
        log.error("%s on %s failed: %s", job.model.name, task.name, exc)
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        record.evalkit = {"traceback": traceback.format_exc(limit=5)}
        hooks.on_task_end(info, task, record)
        failure = _write_failure(job, info.config_hash, task, record.error, record.evalkit["traceback"], "task")
        record.path = str(failure) if failure else None
        return record

    record.scores = scores
    record.main_score = main_score
    record.evalkit = {
        "model": redact(job.model.model_dump()) | {"meta": encoder.meta.to_dict()},
        "task": {
            "name": task.name,
            "type": task.type,
            "languages": task.languages,
            "main_metric": task.main_score,
            "fingerprint": task.fingerprint,
            "source": task.source,
            "instruction": task.instruction,
            "skipped_rows": task.skipped_rows,
            "limit": job.tasks.limit,
        },
        "main_score": record.main_score,
        "config_hash": info.config_hash,
        "versions": versions(),
        "device": encoder.meta.device,
        "wall_seconds": {"model_load": info.model_load_seconds, "task": time.perf_counter() - t0},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    hooks.on_task_end(info, task, record)  # callbacks may add figures before the write
    record.path = str(write_result(job.results_dir, job.model.name, getattr(job.model, "revision", None), record.scores, record.evalkit))
    return record


def _task_result_json(task_result) -> dict:
    """Exactly what mteb's TaskResult.to_disk writes (scores rounded to 6 digits)."""
    obj = task_result.model_dump(mode="json")
    obj["date"] = task_result.date.timestamp() if task_result.date else None
    task_result._round_scores(obj["scores"], 6)
    return obj


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"evalkit": evalkit.__version__, "python": platform.python_version()}
    for pkg in ("mteb", "torch", "transformers", "sentence-transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
