"""Wrappers around a built Encoder: long-document chunking, embedding cache, dedup.

``wrap_encoder`` is called by the runner once per job with the job's ``run:`` settings
(``job.extra``); wrappers take an Encoder and are Encoders, so no backend needs flags.
The stack, outermost first::

    ChunkingEncoder (run.long_docs=chunk)  -> long texts become windows
    CachedEncoder   (run.cache=read|readwrite) -> only misses go further down
    DedupEncoder    (run.dedup)            -> each distinct text once
    backend         (token-budget batching, OOM split: evalkit.batching)

Windows are what the cache stores, so chunk settings need no place in the cache key.
Per task, the figures (cache hits/misses, duplicates, chunked and truncated texts, OOM
splits) go into ``record.evalkit["encode"]`` of the result file via a small callback.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.cache import CachedEncoder, EmbeddingCache, default_cache_path, model_identity
from evalkit.callbacks.base import Callback, CallbackList
from evalkit.chunking import ChunkingEncoder, DedupEncoder, LongDocStats
from evalkit.encoders.base import BatchReport, Encoder
from evalkit.encoders.local import LocalEncoder
from evalkit.errors import ConfigError


class RunConfig(BaseModel):
    """The ``run:`` block of conf/config.yaml (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    cache: Literal["off", "read", "readwrite"] = "off"  # conf/config.yaml turns it on for the CLI
    cache_path: str | None = None  # default: <paths.cache_dir>/embeddings.sqlite
    token_budget: int | None = Field(default=None, ge=1)  # padded tokens per forward pass
    max_batch_texts: int | None = Field(default=None, ge=1)
    dedup: bool = True
    long_docs: Literal["truncate", "chunk"] = "truncate"
    chunk_tokens: int | None = Field(default=None, ge=8)  # window incl. specials; default model max
    chunk_overlap: int = Field(default=64, ge=0)
    chunk_pooling: Literal["mean", "max"] = "mean"


# Settings that change speed, never a score: they stay out of Job.config_hash, so changing
# them does not make a finished result look stale (reruns still resume).
SPEED_ONLY = {"cache", "cache_path", "token_budget", "max_batch_texts", "dedup"}


def validate_run_config(extra: dict[str, Any] | None) -> RunConfig:
    try:
        return RunConfig(**(extra or {}))
    except ValidationError as exc:
        problems = "; ".join(f"run.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid run settings: {problems}. Valid keys: {', '.join(RunConfig.model_fields)}") from None


def scoring_run_settings(extra: dict[str, Any] | None) -> dict[str, Any]:
    """The run settings that can change a score, defaults left out (what the config hash sees)."""
    cfg = validate_run_config(extra)
    defaults = RunConfig()
    return {
        k: v
        for k, v in cfg.model_dump().items()
        if k not in SPEED_ONLY and v != getattr(defaults, k)
    }


class EncodeStatsCallback(Callback):
    """Adds the wrappers' per-task figures to ``record.evalkit["encode"]``."""

    def __init__(self, run: RunConfig, long_docs: LongDocStats, cache: EmbeddingCache | None, backend):
        self.run, self.long_docs, self.cache, self.backend = run, long_docs, cache, backend
        self._start: dict[str, int] = {}
        self._truncated = self._tokens_cut = 0

    def _now(self) -> dict[str, int]:
        now = dict(self.long_docs.as_dict())
        if self.cache is not None:
            now.update({f"cache_{k}": v for k, v in self.cache.counters.as_dict().items()})
        stats = getattr(self.backend, "batch_stats", None)
        if stats is not None:
            now["oom_splits"] = stats.oom_splits
        return now

    def on_task_start(self, job, task) -> None:
        self._start = self._now()
        self._truncated = self._tokens_cut = 0

    def on_batch_end(self, report: BatchReport) -> None:
        self._truncated += report.truncated_texts
        self._tokens_cut += report.tokens_cut

    def on_task_end(self, job, task, record) -> None:
        now = self._now()
        delta = {k: v - self._start.get(k, 0) for k, v in now.items()}
        block = {
            "long_docs": self.run.long_docs,
            "truncated_texts": self._truncated,  # among texts the model encoded (not cache hits)
            "tokens_cut": self._tokens_cut,
            "token_budget": getattr(self.backend, "effective_token_budget", lambda: None)(),
            **delta,
        }
        if self.run.long_docs == "chunk":
            block |= {"chunk_overlap": self.run.chunk_overlap, "chunk_pooling": self.run.chunk_pooling}
        block["cache"] = self.run.cache
        if self.cache is not None:
            block["cache_path"] = str(self.cache.path)
        record.evalkit["encode"] = block


def wrap_encoder(encoder: Encoder, job, *, model_config: dict[str, Any] | None = None) -> Encoder:
    run = validate_run_config(getattr(job, "extra", None))
    backend = encoder
    if isinstance(backend, LocalEncoder):
        backend.token_budget = run.token_budget
        backend.max_batch_texts = run.max_batch_texts

    stats = LongDocStats()
    wrapped: Any = encoder
    if run.dedup:
        wrapped = DedupEncoder(wrapped, stats)
    cache = None
    if run.cache != "off":
        path = run.cache_path or default_cache_path(getattr(job, "cache_dir", None))
        if path is None:
            raise ConfigError("run.cache is on but there is no cache folder: set paths.cache_dir or run.cache_path")
        cache = EmbeddingCache(path, run.cache)
        if model_config is None and getattr(job, "model", None) is not None:
            model_config = job.model.model_dump()
        wrapped = CachedEncoder(wrapped, cache, model_identity(backend.meta, model_config))
    if run.long_docs == "chunk":
        wrapped = ChunkingEncoder(
            wrapped,
            backend,
            overlap=run.chunk_overlap,
            pooling=run.chunk_pooling,
            window_tokens=run.chunk_tokens,
            stats=stats,
        )

    hooks = getattr(backend, "hooks", None)
    if isinstance(hooks, CallbackList):
        # First in line, so callbacks after it (profiler, summary) already see the figures.
        hooks.callbacks.insert(0, EncodeStatsCallback(run, stats, cache, backend))
    return wrapped
