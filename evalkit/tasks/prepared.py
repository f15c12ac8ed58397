"""A task ready to evaluate: an mteb task object with its data loaded, plus provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mteb.abstasks import AbsTask


@dataclass
class PreparedTask:
    name: str  # the task name results are filed under (mteb's metadata.name)
    task: AbsTask  # data already loaded: mteb will not touch the Hub
    fingerprint: str  # hash of the data the scores come from + builder version
    instruction: str | None = None  # query instruction for instruction-following models
    source: str = "mteb"  # "mteb-mirror" | "builtin" | "user" | "hub"
    skipped_rows: dict[str, int] = field(default_factory=dict)  # reason -> count
    extra: dict[str, Any] = field(default_factory=dict)
    # A task with its own measuring code instead of an mteb evaluator (e.g. ``perf``):
    # ``runner(encoder, job, info) -> (result dict with "task_name" and "scores", main score)``.
    runner: Callable[..., tuple[dict, float | None]] | None = None

    @property
    def type(self) -> str:
        return self.task.metadata.type

    @property
    def main_score(self) -> str:
        return self.task.metadata.main_score

    @property
    def languages(self) -> list[str]:
        return list(self.task.metadata.languages)
