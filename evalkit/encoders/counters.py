"""What one stack encoded, counted once: :class:`EncodeCounters` (the runner records each task's
difference in the result's ``encode`` block) and :class:`CountingHooks`, what the backend
reports its batches to (counted here, then passed on to the callbacks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from evalkit.encoders.base import NO_HOOKS, BatchReport, Hooks


@dataclass
class EncodeCounters:
    """Counters of the whole stack, each kept by the layer that knows it."""

    batches: int = 0
    texts: int = 0  # texts the model encoded (not cache hits, not duplicates)
    real_tokens: int = 0
    padded_tokens: int = 0
    truncated_texts: int = 0
    tokens_cut: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_stored: int = 0
    duplicates_skipped: int = 0
    texts_chunked: int = 0
    chunks: int = 0
    oom_splits: int = 0  # kept by the local backends' batch runner (evalkit.encoders.batching)
    reports: list[BatchReport] = field(default_factory=list, repr=False)  # the last few, for perf

    def snapshot(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "reports"}

    def since(self, before: dict[str, int]) -> dict[str, int]:
        now = self.snapshot()
        return {k: now[k] - before.get(k, 0) for k in now}


class CountingHooks:
    """What the backend reports to: every batch counted once here, then passed on downstream."""

    def __init__(self, counters: EncodeCounters, downstream: Hooks = NO_HOOKS):
        self.counters, self.downstream = counters, downstream
        self._paused = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Batches in here are neither counted nor passed on: the known-answer probe's, no task's work."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def on_batch_end(self, report: BatchReport) -> None:
        if self._paused:
            return
        c = self.counters
        c.batches += 1
        c.texts += report.n_texts
        c.real_tokens += report.real_tokens or 0
        c.padded_tokens += report.padded_tokens or 0
        c.truncated_texts += report.truncated_texts
        c.tokens_cut += report.tokens_cut
        c.reports = (c.reports + [report])[-64:]
        self.downstream.on_batch_end(report)
