"""Callbacks see a job through five hooks; the profiler and progress reporting are callbacks.

The runner calls ``on_task_end`` *before* the result file is written, so a callback can
add its figures to ``record.evalkit`` (e.g. ``record.evalkit["profile"] = {...}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalkit.encoders.base import BatchReport, EncoderMeta
from evalkit.tasks.prepared import PreparedTask


@dataclass
class JobInfo:
    model_name: str
    config_hash: str
    task_names: list[str]
    model_meta: EncoderMeta | None = None  # set once the model is loaded
    model_load_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskRecord:
    """One (model, task) outcome; what the result file and the summary table are made of."""

    model_name: str
    task_name: str
    status: str  # "ok" | "failed" | "skipped" (already complete)
    main_score: float | None = None
    main_metric: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)  # mteb TaskResult as dict
    evalkit: dict[str, Any] = field(default_factory=dict)  # provenance + callback figures
    error: str | None = None
    path: str | None = None  # result file


class Callback:
    def on_job_start(self, job: JobInfo) -> None: ...

    def on_model_loaded(self, job: JobInfo) -> None: ...

    def on_task_start(self, job: JobInfo, task: PreparedTask) -> None: ...

    def on_batch_end(self, report: BatchReport) -> None: ...

    def on_task_end(self, job: JobInfo, task: PreparedTask, record: TaskRecord) -> None: ...

    def on_job_end(self, job: JobInfo, records: list[TaskRecord]) -> None: ...


class CallbackList(Callback):
    """Fans every hook out to each callback; it is also what backends get as ``hooks``."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])

    def on_job_start(self, job):
        for cb in self.callbacks:
            cb.on_job_start(job)

    def on_model_loaded(self, job):
        for cb in self.callbacks:
            cb.on_model_loaded(job)

    def on_task_start(self, job, task):
        for cb in self.callbacks:
            cb.on_task_start(job, task)

    def on_batch_end(self, report):
        for cb in self.callbacks:
            cb.on_batch_end(report)

    def on_task_end(self, job, task, record):
        for cb in self.callbacks:
            cb.on_task_end(job, task, record)

    def on_job_end(self, job, records):
        for cb in self.callbacks:
            cb.on_job_end(job, records)
