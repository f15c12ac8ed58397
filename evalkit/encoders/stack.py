"""``build_stack``: the encoder a job's tasks call, and one stats object for all its layers.

Outermost first::

    ChunkingEncoder (encode.long_docs=chunk)      long texts become windows
    ProgressEncoder                               texts done, for the progress display
    CachedEncoder   (encode.cache=read|readwrite) only misses go further down
    DedupEncoder    (encode.dedup)                each distinct text once
    backend         (st | hf | openai_compat; token-budget batching inside local backends)

Each wrapper knows only ``.inner``. The backend is built lazily: a job whose every vector
is in the cache never loads the model (``chunk`` needs the tokenizer, so it loads at once).
Every BatchReport goes through :class:`StatsHooks`, which counts it once in
:class:`EncodeStats` and passes it on to the callbacks.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalkit.encoders.base import NO_HOOKS, BatchReport, EncoderMeta, Hooks, encode_iter
from evalkit.errors import ConfigError, EvalkitError, ModelLoadError
from evalkit.results.files import check_writable_folder

BACKENDS = {
    "sentence_transformers": "evalkit.encoders.sentence_tf",
    "hf": "evalkit.encoders.hf",
    "jina": "evalkit.encoders.jina",
    "openai_compat": "evalkit.encoders.openai_compat",
}


@dataclass
class EncodeStats:
    """Counters of the whole stack; the runner records per-task differences."""

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
    oom_splits: int = 0
    reports: list[BatchReport] = field(default_factory=list, repr=False)  # the last few, for perf

    def snapshot(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "reports"}

    def since(self, before: dict[str, int]) -> dict[str, int]:
        now = self.snapshot()
        return {k: now[k] - before.get(k, 0) for k in now}


class StatsHooks:
    """What the backend reports to: counted once here, then passed on to the callbacks."""

    def __init__(self, stats: EncodeStats, downstream: Hooks = NO_HOOKS):
        self.stats, self.downstream = stats, downstream

    def on_batch_end(self, report: BatchReport) -> None:
        s = self.stats
        s.batches += 1
        s.texts += report.n_texts
        s.real_tokens += report.real_tokens or 0
        s.padded_tokens += report.padded_tokens or 0
        s.truncated_texts += report.truncated_texts
        s.tokens_cut += report.tokens_cut
        s.reports = (s.reports + [report])[-64:]
        self.downstream.on_batch_end(report)


def backend_module(backend: str):
    if backend not in BACKENDS:
        raise ConfigError(f"unknown model backend {backend!r}; valid backends: {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(BACKENDS[backend])


class LazyBackend:
    """Builds the backend on first use; until then ``meta`` comes from the config."""

    def __init__(self, build: Callable[[], Any], cfg, hooks: Hooks,
                 on_load: Callable[[Any, float], None] | None = None):
        self._build, self.cfg, self.hooks, self._on_load = build, cfg, hooks, on_load
        self.loaded = None
        self.load_seconds: float | None = None

    def load(self):
        if self.loaded is None:
            t0 = time.perf_counter()
            try:
                self.loaded = self._build()
            except EvalkitError as exc:  # e.g. a dead server: its message already says what and where
                raise ModelLoadError(str(exc)) from exc
            except Exception as exc:  # one clear line for the user; the traceback goes to the failure records
                raise ModelLoadError(f"model {self.cfg.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
            self.load_seconds = time.perf_counter() - t0
            if self._on_load is not None:
                self._on_load(self.loaded, self.load_seconds)
        return self.loaded

    @property
    def meta(self) -> EncoderMeta:
        if self.loaded is not None:
            return self.loaded.meta
        cfg = self.cfg
        return EncoderMeta(name=cfg.name, model_id=getattr(cfg, "model_id", None) or getattr(cfg, "model", ""),
                           revision=cfg.revision, backend=cfg.backend, dim=getattr(cfg, "dimension", None),
                           dtype=getattr(cfg, "dtype", None), extra={"loaded": False})

    def tokenizer_view(self):
        """The loaded model's view; before it loads, the tokenizer alone where the backend can
        (a rerun whose vectors are all cached never loads the model for document lengths)."""
        if self.loaded is None:
            load_view = getattr(backend_module(self.cfg.backend), "load_view", None)
            if load_view is None:
                return None
            if getattr(self, "_view", None) is None:
                self._view = load_view(self.cfg)
            return self._view
        return getattr(self.loaded, "tokenizer_view", lambda: None)()

    def encode(self, texts, *, role, instruction=None):
        return self.load().encode(texts, role=role, instruction=instruction)

    def encode_iter(self, texts, *, role, instruction=None):
        if not texts:
            return
        yield from encode_iter(self.load(), texts, role=role, instruction=instruction)

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.close()


@dataclass
class EncoderStack:
    encoder: Any  # the top of the stack: what tasks call
    backend: LazyBackend  # the bottom: ``backend.load()`` for the model itself (perf measures it)
    stats: EncodeStats
    cache: Any = None  # EmbeddingCache, when on

    def close(self) -> None:
        self.encoder.close()


def cache_path(encode_cfg, cache_dir: Path | None) -> Path:
    if encode_cfg.cache_path:
        return Path(encode_cfg.cache_path)
    if cache_dir is None:
        raise ConfigError("encode.cache is on but there is no cache folder: set paths.cache_dir or encode.cache_path")
    return Path(cache_dir) / "embeddings.sqlite"


def build_stack(model_cfg, encode_cfg, *, cache_dir: Path | None = None, hooks: Hooks = NO_HOOKS,
                on_load: Callable[[Any, float], None] | None = None, lazy: bool = True) -> EncoderStack:
    from evalkit.cache import CachedEncoder, EmbeddingCache, model_identity
    from evalkit.chunking import ChunkingEncoder
    from evalkit.encoders.dedup import DedupEncoder
    from evalkit.encoders.local import Batching

    stats = EncodeStats()
    backend_hooks = StatsHooks(stats, hooks)
    batching = Batching(token_budget=encode_cfg.token_budget, max_batch_texts=encode_cfg.max_batch_texts,
                        min_efficiency=encode_cfg.min_padding_efficiency, prefetch=encode_cfg.prefetch)
    module = backend_module(model_cfg.backend)

    def build():
        if model_cfg.backend == "openai_compat":
            return module.build(model_cfg, backend_hooks)
        if encode_cfg.workers > 1 or encode_cfg.devices:
            from evalkit.parallel import build_parallel

            return build_parallel(model_cfg, encode_cfg, backend_hooks, batching)
        return module.build(model_cfg, backend_hooks, batching)

    if model_cfg.backend != "openai_compat" and (encode_cfg.workers > 1 or encode_cfg.devices):
        from evalkit.parallel import worker_devices

        worker_devices(model_cfg, encode_cfg)  # a device this machine lacks: ConfigError now, not at first encode
    backend = LazyBackend(build, model_cfg, backend_hooks, on_load)
    if not lazy or encode_cfg.long_docs == "chunk":
        backend.load()
    encoder: Any = backend
    if encode_cfg.dedup:
        encoder = DedupEncoder(encoder, stats)
    cache = None
    if encode_cfg.shard is not None:  # encode-only shard job: its own file store in place of the sqlite cache
        from evalkit.parallel.shards import shard_encoder

        if cache_dir is None:
            raise ConfigError("encode.shard needs a cache folder for its shard store: set paths.cache_dir")
        encoder = shard_encoder(encoder, backend, model_cfg, encode_cfg, Path(cache_dir))
    elif encode_cfg.cache != "off":
        path = cache_path(encode_cfg, cache_dir)
        if encode_cfg.cache == "readwrite":
            check_writable_folder(path.parent, "the embedding cache",
                                  "encode.cache_path (or paths.cache_dir), or turn it off with encode.cache=off")
        cache = EmbeddingCache(path, encode_cfg.cache, stats=stats)
        encoder = CachedEncoder(encoder, cache, model_identity(model_cfg), commit_s=encode_cfg.cache_commit_s)
    if hasattr(hooks, "on_encode_progress"):
        from evalkit.encoders.progress import ProgressEncoder

        encoder = ProgressEncoder(encoder, hooks, stats)
    if encode_cfg.long_docs == "chunk":
        encoder = ChunkingEncoder(encoder, stats, overlap=encode_cfg.chunk_overlap, pooling=encode_cfg.chunk_pooling,
                                  window_tokens=encode_cfg.chunk_tokens)
    return EncoderStack(encoder=encoder, backend=backend, stats=stats, cache=cache)


def build_backend(model_cfg, hooks: Hooks = NO_HOOKS, batching=None):
    """A backend alone, loaded now, without cache or wrappers (scripts, benchmarks, tests)."""
    module = backend_module(model_cfg.backend)
    if model_cfg.backend == "openai_compat":
        return module.build(model_cfg, hooks)
    return module.build(model_cfg, hooks, batching)
