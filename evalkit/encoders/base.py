"""The one protocol every embedding backend implements.

An Encoder turns texts into float32 vectors ``(n, dim)``. It knows the *role* of the
texts (query, document, or a symmetric task where both sides are alike) and the
task's instruction, so that instruction-following models (Qwen3) can format inputs
their own way while plain models ignore both.

Backends report every batch to ``hooks`` (the callback manager, see
``evalkit.callbacks.base``) with a :class:`BatchReport`; that is how the profiler sees
latency, tokens, padding and truncation without flags inside each backend.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


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


@runtime_checkable
class Encoder(Protocol):
    meta: EncoderMeta
    hooks: Hooks

    def encode(
        self,
        texts: list[str],
        *,
        role: Role,
        instruction: str | None = None,
    ) -> np.ndarray:
        """Return float32 array (len(texts), dim), in input order."""
        ...

    def close(self) -> None:
        """Free resources (GPU memory, HTTP pools)."""
        ...


class EncoderWrapper:
    """Base of wrappers that are Encoders around an Encoder (cache, chunking, dedup):
    identity and hooks are the inner encoder's, closing closes it."""

    def __init__(self, inner: Encoder):
        self.inner = inner

    @property
    def meta(self) -> EncoderMeta:
        return self.inner.meta

    @property
    def hooks(self) -> Hooks:
        return self.inner.hooks

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
