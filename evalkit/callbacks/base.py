"""Callbacks see a job through its hooks; the profiler, progress and summary are callbacks.

Order per task: ``on_task_start`` → ``on_batch_end`` (every batch) → ``task_figures``
(before the result is written: a callback may return figures for the result's evalkit
block, e.g. ``{"profile": {...}}``) → ``on_task_end`` (with the saved record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.encoders.base import EncodeProgress  # noqa: F401  (a hook's argument; defined with the encoders)

if TYPE_CHECKING:
    from evalkit.encoders.base import BatchReport, EncoderMeta
    from evalkit.results import ResultFile
    from evalkit.tasks.base import Task


@dataclass
class JobInfo:
    model_name: str  # the variant's display name
    config_hash: str
    task_names: list[str]
    model_meta: EncoderMeta | None = None  # set once the model is loaded
    model_load_seconds: float | None = None
    results_dir: str | None = None


@dataclass
class TaskRecord:
    """One (model, task) outcome of a run."""

    model_name: str
    task_name: str
    status: str  # "ok" | "failed" | "skipped" (already complete)
    result: ResultFile | None = None
    error: str | None = None
    path: str | None = None  # result file (or failure record)

    @property
    def main_score(self) -> float | None:
        return self.result.evalkit.main_score if self.result is not None else None

    @property
    def main_metric(self) -> str | None:
        return self.result.evalkit.task.main_metric if self.result is not None else None


class Callback:
    def on_job_start(self, job: JobInfo) -> None: ...

    def on_model_loaded(self, job: JobInfo) -> None: ...

    def on_task_start(self, job: JobInfo, task: Task) -> None: ...

    def on_batch_end(self, report: BatchReport) -> None: ...

    def on_encode_progress(self, progress: EncodeProgress) -> None:
        """Texts done of one encode call (cache hits included), as batches stream up."""

    def on_stage(self, name: str, seconds: float, items: int) -> None:
        """A stage beside encoding finished a step (``rerank``: ``items`` pairs scored; ``rerank_load``)."""

    def task_figures(self, job: JobInfo, task: Task) -> dict[str, Any]:
        return {}

    def on_task_end(self, job: JobInfo, task: Task, record: TaskRecord) -> None: ...

    def on_job_end(self, job: JobInfo, records: list[TaskRecord]) -> None: ...


class CallbackList(Callback):
    """Fans every hook out to each callback."""

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

    def on_encode_progress(self, progress):
        for cb in self.callbacks:
            cb.on_encode_progress(progress)

    def on_stage(self, name, seconds, items):
        for cb in self.callbacks:
            cb.on_stage(name, seconds, items)

    def task_figures(self, job, task):
        out: dict[str, Any] = {}
        for cb in self.callbacks:
            out |= cb.task_figures(job, task) or {}
        return out

    def on_task_end(self, job, task, record):
        for cb in self.callbacks:
            cb.on_task_end(job, task, record)

    def on_job_end(self, job, records):
        for cb in self.callbacks:
            cb.on_job_end(job, records)
