"""Compressed vectors (``encode.vectors=float16|int8|uint8|binary|ubinary``): what an index
would store instead of the model's float32, scored through mteb as it is.

The quantisation is sentence-transformers' ``quantize_embeddings`` (float16 is a plain cast):

* ``int8`` / ``uint8``: per-dimension min/max ranges *calibrated on the evaluated corpus*, each
  dimension cut into 256 buckets. A retrieval task gets :class:`CalibratedSearch` (mteb's search
  protocol): it encodes the corpus first, calibrates on it, then quantises corpus and queries with
  the same ranges. Other task types calibrate on the task's first encode call (STS: its first
  sentences) and use those ranges for the rest of the task. The calibration is recorded.
* ``binary`` / ``ubinary``: one sign bit per dimension, packed (signed or unsigned bytes — the
  same bits, so the same scores). Scored as ±1 vectors by dot product: ``dim - 2·hamming``,
  exact in float32, so rankings and ties are the Hamming distance's.

The layer sits *above* the embedding cache: the cache keeps the model's float32 vectors (one
encode serves every vector type), and a compressed vector is never stored, so it can never be
served as another type's. The quantised values reach mteb as float32 numbers (exact integers
for int8/uint8, ±1 for binary), scored with the model's similarity (cosine or dot).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Literal

import numpy as np

from evalkit.encoders.base import EncoderMeta, EncoderWrapper, Role, TaskTexts, collect, encode_iter
from evalkit.encoders.layers.top_k import best_documents
from evalkit.errors import ConfigError

VectorType = Literal["float32", "float16", "int8", "uint8", "binary", "ubinary"]
VECTOR_TYPES: tuple[str, ...] = ("float32", "float16", "int8", "uint8", "binary", "ubinary")
CALIBRATED = ("int8", "uint8")
_BYTES_PER_DIM = {"float32": 4.0, "float16": 2.0, "int8": 1.0, "uint8": 1.0, "binary": 1 / 8, "ubinary": 1 / 8}


def bytes_per_vector(vectors: str, dim: int) -> int:
    """Storage of one vector: 4·dim for float32 … dim/8 for the binary types."""
    check_dimension(vectors, dim)
    return int(round(_BYTES_PER_DIM[vectors] * dim))


def index_mb_per_million(vectors: str, dim: int) -> float:
    """The raw vectors of a million documents, in MB (10^6 bytes), without index overhead."""
    return bytes_per_vector(vectors, dim) * 1e6 / 1e6


def check_dimension(vectors: str, dim: int) -> None:
    if vectors not in _BYTES_PER_DIM:
        raise ConfigError(f"encode.vectors={vectors!r} is not a vector type; valid: {', '.join(VECTOR_TYPES)}")
    if vectors.endswith("binary") and dim % 8:
        raise ConfigError(f"encode.vectors={vectors} packs 8 dimensions per byte, but the model's dimension "
                          f"(model.dimension / the model's output) is {dim}, not divisible by 8")


def calibration_ranges(vectors: np.ndarray, where: str) -> np.ndarray:
    """(2, dim): per-dimension min and max of the calibration vectors."""
    if len(vectors) == 0:
        raise ConfigError(f"encode.vectors=int8/uint8: the calibration set ({where}) is empty; "
                          "a task with no texts cannot calibrate the quantisation ranges")
    return np.vstack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def quantise(vectors: np.ndarray, kind: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """What the index stores: sentence-transformers' quantize_embeddings (float16: a cast)."""
    if kind == "float32":
        return np.asarray(vectors, dtype=np.float32)
    if kind == "float16":
        return np.asarray(vectors, dtype=np.float16)
    from sentence_transformers.util import quantize_embeddings

    return quantize_embeddings(np.asarray(vectors, dtype=np.float32), precision=kind, ranges=ranges)


def scoring_view(stored: np.ndarray, kind: str, dim: int) -> np.ndarray:
    """The stored vectors as the float32 numbers mteb scores: integers for int8/uint8, ±1 per
    bit for the binary types (cosine of ±1 vectors = 1 - 2·hamming/dim)."""
    if kind.endswith("binary"):
        raw = stored.astype(np.int16) + 128 if kind == "binary" else stored
        bits = np.unpackbits(raw.astype(np.uint8), axis=-1)[:, :dim]
        return bits.astype(np.float32) * 2 - 1
    return stored.astype(np.float32)


class CompressEncoder(EncoderWrapper):
    """Quantises the vectors coming up from the cache; int8/uint8 with the task's calibration."""

    def __init__(self, inner, vectors: str):
        super().__init__(inner)
        self.vectors = vectors
        self.ranges: np.ndarray | None = None
        self.dim: int | None = None  # seen in the vectors (every vector may come from the cache: no model loaded)
        self.calibrations: list[dict[str, Any]] = []  # this task's: one per retrieval subset, else one

    @property
    def meta(self) -> EncoderMeta:
        """Binary types score by dot product: for ±1 vectors it is ``dim - 2·hamming``, an exact integer
        in float32, so tied Hamming distances stay tied (a cosine's rounding would break the ties)."""
        meta = self.inner.meta
        return dataclasses.replace(meta, similarity="dot") if self.vectors.endswith("binary") else meta

    def task_started(self, texts: TaskTexts) -> None:
        self.ranges, self.calibrations = None, []  # every task calibrates on its own texts

    def calibrate(self, vectors: np.ndarray, on: str) -> None:
        self.ranges = calibration_ranges(vectors, on)
        digest = hashlib.sha256(self.ranges.tobytes()).hexdigest()[:16]
        width = self.ranges[1] - self.ranges[0]
        self.calibrations.append({"on": on, "vectors": int(len(vectors)), "ranges_sha256": digest,
                                  "mean_range": round(float(width.mean()), 6),
                                  "min": round(float(self.ranges[0].min()), 6),
                                  "max": round(float(self.ranges[1].max()), 6)})

    def compress(self, vectors: np.ndarray) -> np.ndarray:
        check_dimension(self.vectors, vectors.shape[1])
        self.dim = vectors.shape[1]
        stored = quantise(vectors, self.vectors, self.ranges)
        return scoring_view(stored, self.vectors, vectors.shape[1])

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        if self.vectors in CALIBRATED and self.ranges is None:
            floats = collect(encode_iter(self.inner, texts, role=role, instruction=instruction), len(texts),
                             self.meta.dim)
            self.calibrate(floats, f"the task's first encode call ({role.value} texts)")
            yield np.arange(len(texts)), self.compress(floats)
            return
        for idx, vecs in encode_iter(self.inner, texts, role=role, instruction=instruction):
            yield idx, self.compress(np.asarray(vecs, dtype=np.float32))

    def describe(self) -> dict[str, Any]:
        dim = self.dim or self.meta.dim
        facts: dict[str, Any] = {"type": self.vectors, "dim": dim}
        if dim:
            facts |= {"bytes_per_vector": bytes_per_vector(self.vectors, dim),
                      "index_mb_per_million_docs": index_mb_per_million(self.vectors, dim)}
        if self.calibrations:
            facts["calibration"] = [dict(c) for c in self.calibrations]
        return {**self.inner.describe(), "vectors": facts}


class CalibratedSearch:
    """mteb's search protocol for int8/uint8 retrieval: calibrate on the corpus, then search it."""

    def __init__(self, adapter, compressor: CompressEncoder, instruction: str | None):
        self.adapter, self.compressor, self.instruction = adapter, compressor, instruction
        self.mteb_model_meta = adapter.mteb_model_meta
        self._docs = self._ids = None

    def index(self, corpus, *, task_metadata, hf_split, hf_subset, encode_kwargs=None, num_proc=None, **kwargs):
        from evalkit.encoders.mteb_adapter import corpus_texts

        texts = corpus_texts(corpus)
        inner = self.compressor.inner  # float32 vectors, through the cache below
        floats = collect(encode_iter(inner, texts, role=Role.DOCUMENT, instruction=self.instruction), len(texts),
                         self.compressor.meta.dim)
        self.compressor.calibrate(floats, f"the corpus ({hf_subset}/{hf_split})")
        self._docs = self.compressor.compress(floats)
        self._ids = list(corpus["id"])

    def search(self, queries, *, task_metadata, hf_split, hf_subset, top_k, encode_kwargs=None, top_ranked=None,
               num_proc=None, **kwargs):
        if self._docs is None:
            raise ValueError("CalibratedSearch.search before index")
        q = self.compressor.encode(list(queries["text"]), role=Role.QUERY, instruction=self.instruction)
        return best_documents(q, queries["id"], self._docs, self._ids, self.adapter.similarity, top_k)
