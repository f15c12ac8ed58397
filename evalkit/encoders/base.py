"""The one protocol every embedding backend implements.

An Encoder turns texts into float32 vectors ``(n, dim)``. It knows the *role* of the
texts (query, document, or a symmetric task where both sides are alike) and the
task's instruction, so that instruction-following models (Qwen3) can format inputs
their own way while plain models ignore both.

Backends report every batch to ``hooks`` with a :class:`BatchReport`; the encoder stack
(``evalkit.encoders.stack``) counts them once and passes them on to the callbacks, so the
profiler sees latency, tokens, padding and truncation without flags inside each backend.
``describe()`` says how the vectors were computed where that is more than "one process on
``meta.device``" (worker processes and their figures, shard jobs): the result's ``computed``.
The known-answer probe (``evalkit.encoders.probe``) needs nothing of a backend but ``encode``.

Vectors may also stream: ``encode_iter`` yields ``(indices, vectors)`` batch by batch, so
the cache above a backend can commit every few seconds instead of at the end.

A *layer* (:class:`EncoderWrapper`: cache, dedup, chunking, progress …) is an Encoder around
an Encoder that knows only ``.inner``. The stack tells its layers which tasks come
(``start``) and when each runs (``task_started`` / ``task_finished``), each given as
:class:`TaskTexts`: which texts a task sends the encoder.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evalkit.fields import stable_hash


class Role(str, enum.Enum):
    QUERY = "query"
    DOCUMENT = "document"
    # Both sides of the pair are the same kind of text (STS, classification,
    # bitext mining). Instruction models decide how to treat it (see qwen3 backend).
    SYMMETRIC = "symmetric"


@dataclass
class EncoderMeta:
    """What identifies the vectors an encoder makes (goes into results and cache keys)."""

    name: str  # evalkit model config name, e.g. "minilm_l6"
    model_id: str  # hub id, local path or served model name
    revision: str | None
    backend: str  # "sentence_transformers" | "hf" | "openai_compat"
    dim: int | None = None
    max_tokens: int | None = None
    pooling: str | None = None
    dtype: str | None = None
    device: str | None = None
    normalize: bool = True
    similarity: str = "cosine"  # "cosine" | "dot"
    parameters: int | None = None  # model size, for reports (None for endpoints)
    weight_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchReport:
    """One encoded batch, as backends report it to the hooks."""

    role: Role
    n_texts: int
    seconds: float  # wall time of the batch (device-synchronised on CUDA)
    real_tokens: int | None = None  # tokens of the inputs after truncation, no padding
    padded_tokens: int | None = None  # batch rows x longest row (what the device computed)
    truncated_texts: int = 0  # inputs longer than max_tokens
    tokens_cut: int = 0  # tokens dropped by truncation
    remote: bool = False  # True for HTTP backends: seconds is request latency


class Hooks(Protocol):
    def on_batch_end(self, report: BatchReport) -> None: ...


class _NoHooks:
    def on_batch_end(self, report: BatchReport) -> None:  # noqa: D102
        pass


NO_HOOKS: Hooks = _NoHooks()


Batches = Iterator[tuple[np.ndarray, np.ndarray]]  # (row indices into the input, their vectors)


@runtime_checkable
class Encoder(Protocol):
    meta: EncoderMeta
    hooks: Hooks

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        """Return float32 array (len(texts), dim), in input order."""
        ...

    def describe(self) -> dict[str, Any]:
        """How the vectors were computed beyond ``meta`` (workers, devices, shards); {} when plain."""
        ...

    def close(self) -> None:
        """Free resources (GPU memory, HTTP pools)."""
        ...


def encode_iter(encoder, texts: list[str], *, role: Role, instruction: str | None = None) -> Batches:
    """Vectors batch by batch where the encoder streams them, else all at once."""
    stream = getattr(encoder, "encode_iter", None)
    if stream is not None:
        yield from stream(texts, role=role, instruction=instruction)
        return
    vecs = encoder.encode(texts, role=role, instruction=instruction)
    yield np.arange(len(texts)), vecs


def collect(batches: Batches, n: int, dim: int | None) -> np.ndarray:
    """Assemble streamed batches into one (n, dim) array in input order."""
    out: np.ndarray | None = None
    for idx, vecs in batches:
        if out is None:
            out = np.empty((n, vecs.shape[1]), dtype=np.float32)
        out[idx] = vecs
    return out if out is not None else np.zeros((0, dim or 0), dtype=np.float32)


@dataclass
class EncodeProgress:
    """How far one encode call has come (``ProgressEncoder`` -> the hooks' ``on_encode_progress``)."""

    role: str  # query | document | symmetric
    done: int  # texts with a vector so far in this encode call
    total: int
    cached: int  # of done: answered by the embedding cache
    started: float  # time.perf_counter() at the call's start
    finished: bool = False


@dataclass(frozen=True)
class TaskTexts:
    """Which texts a task sends the encoder: its name, its data's fingerprint, and the task and
    encode settings that choose or cut them (limit, subsets, instruction; long_docs, windows)."""

    name: str
    fingerprint: str
    settings: dict[str, Any]

    @property
    def id(self) -> str:
        return stable_hash({"name": self.name, "fingerprint": self.fingerprint, **self.settings})


class EncoderWrapper:
    """Base of the layers: Encoders around an Encoder (cache, chunking, dedup, progress). A layer
    knows only ``.inner``: identity, hooks, the tokenizer view and ``describe()`` are the inner
    encoder's unless the layer adds to them; the task hooks do nothing unless it needs them."""

    def __init__(self, inner: Encoder):
        self.inner = inner

    def start(self, tasks: list[TaskTexts]) -> None:
        """Before the first task of a run, with every task to come."""

    def task_started(self, texts: TaskTexts) -> None:
        """A task begins sending texts."""

    def task_finished(self, texts: TaskTexts, ok: bool) -> None:
        """The task is done (``ok``) or stopped."""

    @property
    def reaches_model(self) -> bool:
        """Whether a text this layer is asked for can still reach the model (False: it answers
        every text itself or refuses it, as a scoring run over merged shard stores)."""
        return True

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    @property
    def meta(self) -> EncoderMeta:
        return self.inner.meta

    @property
    def hooks(self) -> Hooks:
        return self.inner.hooks

    def tokenizer_view(self):
        return self.inner.tokenizer_view()

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        return collect(self.encode_iter(texts, role=role, instruction=instruction), len(texts), self.meta.dim)

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None) -> Batches:
        raise NotImplementedError

    def close(self) -> None:
        self.inner.close()


def check_embeddings(vectors: np.ndarray, n_texts: int, where: str) -> np.ndarray:
    """Validate a backend's output: one finite row per input, float32."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n_texts:
        raise ValueError(f"{where}: expected {n_texts} vectors, got array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{where}: {bad} of {n_texts} vectors contain NaN or inf")
    return arr
