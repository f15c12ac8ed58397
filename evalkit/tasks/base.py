"""The one task protocol: every task — an mteb-backed one, the perf benchmark, a user's —
has metadata, a data fingerprint and ``evaluate(encoder, ctx) -> TaskOutput``.

The runner knows nothing else about tasks: it checks ``expected_subsets`` to decide whether
a saved result is complete, calls ``evaluate``, and files the output through the result store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.encoders.base import Encoder, Hooks
    from evalkit.encoders.stack import EncoderStack
    from evalkit.results import TaskBlock, TaskItems

# Task type of benchmarks that measure cost, not quality: readers show their figures as
# speed columns, never as a score to rank by.
PERFORMANCE = "Performance"


@dataclass
class EvalContext:
    """What a task may use besides the encoder it is given (the top of ``stack``)."""

    hooks: Hooks
    work_dir: Path  # scratch space for this task (mteb's prediction files)
    # The whole stack: ``search`` (retrieval by best window), ``model()`` (the backend itself, for the
    # perf kind, which times the model rather than the cache above it) and ``counters``.
    stack: EncoderStack
    model_load_seconds: float | None = None


@dataclass
class TaskOutput:
    task_result: dict[str, Any]  # mteb's TaskResult JSON layout (task_name, scores{split: [subset entries]}, …)
    main_score: float | None
    items: TaskItems | None = None  # per-item scores (CIs, paired tests), when the task type has them
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific figures for the result's evalkit block


class Task:
    """Metadata every task has; subclasses implement :meth:`evaluate`."""

    name: str
    type: str
    main_metric: str
    languages: list[str]
    fingerprint: str  # hash of the data (and settings) the score comes from
    source: str = "builtin"  # builtin | user | mteb-mirror | hub
    instruction: str | None = None  # query instruction for instruction-following models
    limit: int | None = None
    subsets: list[str] | None = None
    skipped_rows: dict[str, int]
    data_load_seconds: float | None = None

    def expected_subsets(self) -> dict[str, list[str]] | None:
        """{split: [subset, …]} a complete result must have a main score for; None: no check."""
        return None

    def evaluate(self, encoder: Encoder, ctx: EvalContext) -> TaskOutput:
        raise NotImplementedError

    def info(self) -> TaskBlock:
        from evalkit.results import TaskBlock

        return TaskBlock(
            name=self.name, type=self.type, languages=list(self.languages), main_metric=self.main_metric,
            fingerprint=self.fingerprint, source=self.source, instruction=self.instruction,
            skipped_rows=dict(getattr(self, "skipped_rows", {}) or {}), limit=self.limit, subsets=self.subsets,
        )
