"""``build_stack``: the encoder a job's tasks call, built from an ordered list of layers.

Outermost first::

    ChunkingEncoder  (encode.long_docs=chunk)       long texts become windows
    ProgressEncoder  (hooks with on_encode_progress) texts done, for the progress display
    CompressEncoder  (encode.vectors != float32)    what an index stores: float16, int8, binary …
    the cache slot   CachedEncoder (encode.cache=read|readwrite; ShardMerge under it) — only
                     misses go further down — or, in a shard job (encode.shard=i/N), ShardEncoder
    DedupEncoder     (encode.dedup)                  each distinct text once
    the backend      one module of evalkit.encoders.backends, or the worker pool over it
                     (encode.workers / encode.devices: evalkit.encoders.parallel); lazy

This is the only place that knows the order: each layer knows only ``.inner``. The backend is
built lazily: a job whose every vector is in the cache never loads the model (``chunk`` needs
the tokenizer, so it loads at once). Every BatchReport goes through :class:`CountingHooks`,
which counts it once in :class:`EncodeCounters` and passes it on to the callbacks.

What the runner sees is :class:`EncoderStack`: the top encoder, the counters, ``start`` (the
tasks to come: a scoring run merges shard stores here, then the model's known-answer probe is
checked — ``evalkit.encoders.probe``), ``task`` (a task runs: the layers' bookkeeping), ``sink``
(where task outputs go when not to the result store), ``describe()`` (how the vectors were
computed) and ``probe.outcome`` (what the results record of the probe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.encoders import parallel
from evalkit.encoders.backends import backend_module
from evalkit.encoders.base import NO_HOOKS, EncoderWrapper, Hooks, TaskTexts
from evalkit.encoders.batching import Batching
from evalkit.encoders.counters import CountingHooks, EncodeCounters
from evalkit.encoders.layers.cache import CachedEncoder, EmbeddingCache, model_identity
from evalkit.encoders.layers.chunking import ChunkingEncoder
from evalkit.encoders.layers.compress import CALIBRATED, CalibratedSearch, CompressEncoder
from evalkit.encoders.layers.dedup import DedupEncoder
from evalkit.encoders.layers.maxp import MaxPSearch
from evalkit.encoders.layers.progress import ProgressEncoder
from evalkit.encoders.layers.shard_job import shard_encoder
from evalkit.encoders.layers.shard_merge import ShardMerge
from evalkit.encoders.lazy import LazyBackend
from evalkit.encoders.probe import ProbeCheck
from evalkit.errors import ConfigError
from evalkit.results import ResultSink
from evalkit.results.files import check_writable_folder

BuildBackend = Callable[[Hooks, Batching], Any]  # (hooks, batching) -> a loaded Encoder


@dataclass
class EncoderStack:
    encoder: Any  # the top of the stack: what tasks call
    backend: LazyBackend  # the bottom: ``model()`` for the model itself (perf times it, not the cache)
    counters: EncodeCounters
    layers: list[EncoderWrapper] = field(default_factory=list)  # outermost first
    cache_path: Path | None = None  # the embedding cache's file, when on
    # Retrieval tasks' search when documents score by their best window (MaxP):
    # ``search(mteb_adapter, instruction)`` -> an mteb search model; None: plain dense search.
    search: Callable[[Any, str | None], Any] | None = None
    sink: ResultSink | None = None  # where task outputs go instead of the result store (a shard job: its manifest)
    rerank: Any = None  # the job's reranking stage (evalkit.rerank.Reranker), when rerank= is set
    probe: ProbeCheck | None = None  # the model's known-answer probe; None: a stack without one (a test's)

    def model(self):
        """The backend itself, loaded."""
        return self.backend.load()

    def start(self, tasks: list[TaskTexts]) -> None:
        """Before the first task, with every task to come; then the known-answer probe."""
        for layer in self.layers:
            layer.start(tasks)
        if self.probe is None or not self.probe.pending or self.probe.from_cache():
            return
        if all(layer.reaches_model for layer in self.layers):
            self.model()  # loads the model, which is probed before anything else (LazyBackend's check)

    @contextmanager
    def task(self, texts: TaskTexts) -> Iterator[None]:
        """Around one task's evaluation: the layers' per-task bookkeeping."""
        for layer in self.layers:
            layer.task_started(texts)
        ok = False
        try:
            yield
            ok = True
        finally:
            for layer in self.layers:
                layer.task_finished(texts, ok)

    def describe(self) -> dict:
        """How this task's vectors were computed (workers, devices, shards); {} when plain."""
        return self.encoder.describe()

    def close(self) -> None:
        self.encoder.close()
        if self.rerank is not None:
            self.rerank.close()


def cache_path(encode_cfg, cache_dir: Path | None) -> Path:
    if encode_cfg.cache_path:
        return Path(encode_cfg.cache_path)
    if cache_dir is None:
        raise ConfigError("encode.cache is on but there is no cache folder: set paths.cache_dir or encode.cache_path")
    return Path(cache_dir) / "embeddings.sqlite"


def backend_builder(model_cfg, encode_cfg) -> BuildBackend:
    """How the bottom of the stack is built: the model's backend module, or the worker pool over it."""
    module = backend_module(model_cfg.backend)
    if module.IN_WORKERS and parallel.wanted(encode_cfg):
        parallel.worker_devices(model_cfg, encode_cfg)  # a device this machine lacks: ConfigError now
        return lambda hooks, batching: parallel.build(model_cfg, encode_cfg, hooks, batching)
    return lambda hooks, batching: module.build(model_cfg, hooks, batching)


def build_stack(model_cfg, encode_cfg, *, cache_dir: Path | None = None, hooks: Hooks = NO_HOOKS,
                on_load: Callable[[Any, float], None] | None = None, lazy: bool = True,
                build_backend: BuildBackend | None = None) -> EncoderStack:
    """The job's encoder stack; ``build_backend`` replaces the configured backend (a test's fake)."""
    counters = EncodeCounters()
    counting = CountingHooks(counters, hooks)
    build = build_backend or backend_builder(model_cfg, encode_cfg)
    load_view = None if build_backend else getattr(backend_module(model_cfg.backend), "load_view", None)
    probe = ProbeCheck(model_cfg, quiet=counting.paused)
    backend = LazyBackend(lambda: build(counting, Batching.from_config(encode_cfg)), model_cfg, counting, on_load,
                          load_view, check=probe.on_model)
    if not lazy or encode_cfg.long_docs == "chunk":
        backend.load()
    stack = EncoderStack(encoder=backend, backend=backend, counters=counters, probe=probe)
    _backend_search(stack, model_cfg, encode_cfg)
    for make in _layers(model_cfg, encode_cfg, cache_dir, hooks, stack):  # innermost first
        layer = make(stack.encoder)
        if layer is not None:
            stack.encoder = layer
            stack.layers.insert(0, layer)
    # the probe reads and stores its vectors under the cache's model identity, never another's
    probe.cache = next((layer for layer in stack.layers if isinstance(layer, CachedEncoder)), None)
    return stack


def _backend_search(stack: EncoderStack, model_cfg, encode_cfg) -> None:
    """A backend that ranks documents itself (``search_model``: BM25) is every retrieval task's search."""
    search_model = getattr(backend_module(model_cfg.backend), "search_model", None)
    if search_model is None:
        return
    if encode_cfg.long_docs == "chunk":
        raise ConfigError(f"model {model_cfg.name!r} ({model_cfg.backend}) scores whole documents: "
                          "encode.long_docs=chunk does not apply to it; use encode.long_docs=truncate")
    stack.search = lambda adapter, instruction: search_model(stack.model(), adapter, instruction)


def _layers(model_cfg, encode_cfg, cache_dir, hooks, stack: EncoderStack) -> list[Callable[[Any], Any]]:
    """The layers above the backend, innermost first: each makes its layer around ``inner`` (None: off)."""
    counters = stack.counters
    shard_job = encode_cfg.shard is not None  # encode-only: its own file store in the cache's slot, and its sink
    if shard_job and cache_dir is None:
        raise ConfigError("encode.shard needs a cache folder for its shard store: set paths.cache_dir")
    cache = None if shard_job else _open_cache(encode_cfg, cache_dir, counters)
    stack.cache_path = cache.path if cache is not None else None

    def shard_store(inner):
        stack.sink = shard_encoder(inner, model_cfg, encode_cfg, Path(cache_dir), lambda: stack.model().meta.dim)
        return stack.sink

    def chunking(inner):
        chunker = ChunkingEncoder(inner, counters, overlap=encode_cfg.chunk_overlap, pooling=encode_cfg.chunk_pooling,
                                  window_tokens=encode_cfg.chunk_tokens)
        if encode_cfg.chunk_pooling == "maxp":  # retrieval documents score as their best window
            stack.search = lambda adapter, instruction: MaxPSearch(adapter, chunker, instruction)
        return chunker

    def compress(inner):
        if encode_cfg.vectors == "float32" or shard_job:  # a shard job only encodes: its store keeps float32
            return None
        if encode_cfg.long_docs == "chunk":
            raise ConfigError(f"encode.vectors={encode_cfg.vectors} with encode.long_docs=chunk is not supported: "
                              "compress whole-text vectors (long_docs=truncate) or keep vectors=float32")
        if stack.search is not None:  # a backend that ranks documents itself (BM25) has no vectors to compress
            raise ConfigError(f"encode.vectors={encode_cfg.vectors} compresses dense vectors, but model "
                              f"{model_cfg.name!r} ({model_cfg.backend}) ranks documents itself: keep vectors=float32")
        layer = CompressEncoder(inner, encode_cfg.vectors)
        if encode_cfg.vectors in CALIBRATED:  # retrieval calibrates on the corpus before any query
            stack.search = lambda adapter, instruction: CalibratedSearch(adapter, layer, instruction)
        return layer

    return [
        lambda inner: DedupEncoder(inner, counters) if encode_cfg.dedup else None,
        lambda inner: None if shard_job or cache_dir is None else ShardMerge(inner, cache, model_cfg, Path(cache_dir),
                                                                             encode_cfg.cache),
        lambda inner: None if cache is None else CachedEncoder(inner, cache, model_identity(model_cfg),
                                                               commit_s=encode_cfg.cache_commit_s),
        lambda inner: shard_store(inner) if shard_job else None,
        compress,
        lambda inner: ProgressEncoder(inner, hooks, counters) if hasattr(hooks, "on_encode_progress") else None,
        lambda inner: chunking(inner) if encode_cfg.long_docs == "chunk" else None,
    ]


def _open_cache(encode_cfg, cache_dir: Path | None, counters: EncodeCounters) -> EmbeddingCache | None:
    if encode_cfg.cache == "off":
        return None
    path = cache_path(encode_cfg, cache_dir)
    if encode_cfg.cache == "readwrite":
        check_writable_folder(path.parent, "the embedding cache",
                              "encode.cache_path (or paths.cache_dir), or turn it off with encode.cache=off")
    return EmbeddingCache(path, encode_cfg.cache, counters=counters)


def build_backend(model_cfg, hooks: Hooks = NO_HOOKS, batching: Batching | None = None):
    """A backend alone, loaded now, without cache or layers (scripts, benchmarks, tests)."""
    return backend_module(model_cfg.backend).build(model_cfg, hooks, batching)
