"""The store of one shard job: ``<cache_dir>/shards/<model key>/<i>-of-<N>/`` (see
``evalkit.encoders.layers.shard_job`` for the shard job, ``shard_merge`` for the scoring job).

Plain files, never sqlite (the cache folder of a cluster is often on a network file
system, where sqlite's locking is unreliable):

* ``part-<time>-<pid>-<seq>.npz`` — ``keys`` (n x 32 bytes: the embedding cache's keys) and
  ``vectors`` (n x dim float32, the exact bytes the model returned). Written to a temporary
  name and renamed, so a part is whole or absent; a new part at least every
  ``encode.cache_commit_s`` seconds, so a killed job loses only its last seconds of work.
* ``manifest.json`` — the model identity, the shard, and per task (by coverage id: task,
  data fingerprint and the settings that choose its texts) whether this shard finished it,
  how many of its texts it holds, when, where and how it was computed. Rewritten atomically.

A rerun of the same shard reads the keys of its parts and encodes only what is missing.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import ConfigError

MANIFEST = "manifest.json"
STORE_VERSION = 1


def shards_root(cache_dir: Path) -> Path:
    return Path(cache_dir) / "shards"


def shard_dir(root: Path, model_key: str, index: int, count: int) -> Path:
    return root / model_key / f"{index}-of-{count}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_atomic(path: Path, write) -> None:
    """``write(tmp_path)`` then rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def identity_difference(theirs: dict, ours: dict) -> str:
    """The model-config fields two identities differ in, for an error message."""
    a, b = _flat(theirs), _flat(ours)
    diffs = [f"{k.replace('config.', 'model.', 1)}: {a.get(k)!r} in the shards, {b.get(k)!r} here"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(diffs) or "no difference"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("evalkit_shard") == STORE_VERSION else None


def iter_parts(folder: Path, vectors: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(keys (n, 32) uint8, vectors (n, dim) float32 or None) of every whole part file."""
    for path in sorted(folder.glob("part-*.npz")):
        with np.load(path) as part:
            yield part["keys"], (part["vectors"] if vectors else None)


class ShardStore:
    """Vectors of shard ``index`` of ``count`` for one model identity, resumable."""

    def __init__(self, root: Path, identity: dict, model_key: str, index: int, count: int, *, commit_s: float = 5.0):
        self.dir = shard_dir(root, model_key, index, count)
        self.index, self.count, self.model_key, self.commit_s = index, count, model_key, commit_s
        self.dir.mkdir(parents=True, exist_ok=True)
        found = read_manifest(self.dir)
        if found is not None and found.get("identity") != identity:
            raise ConfigError(f"shard store {self.dir} holds vectors of another model config "
                              f"({identity_difference(found.get('identity') or {}, identity)}); move it away")
        self.manifest = found or {
            "evalkit_shard": STORE_VERSION, "shard": f"{index}/{count}", "index": index, "count": count,
            "model_key": model_key, "model_name": identity.get("config", {}).get("name"),
            "identity": identity, "tasks": {},
        }
        self.keys: set[bytes] = set()
        self.dim: int | None = self.manifest.get("dim")
        for keys, _ in iter_parts(self.dir, vectors=False):
            self.keys.update(bytes(k) for k in keys)
        self._pending: list[tuple[list[bytes], np.ndarray]] = []  # (keys, vectors) not yet in a part
        self._last = time.monotonic()
        self._seq = itertools.count()

    def __contains__(self, key: bytes) -> bool:
        return key in self.keys

    # -- vectors ---------------------------------------------------------------------------
    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        # Keys and vectors enter the pending list in one step: an exit raised by a signal handler
        # (SLURM preemption) between two statements must not leave keys without their vectors.
        self._pending.append((list(keys), np.asarray(vectors, dtype=np.float32)))
        self.keys.update(keys)  # known from now on: a text repeated before the next part is not encoded twice
        self.dim = int(vectors.shape[1])
        if time.monotonic() - self._last >= self.commit_s:
            self.flush()

    def flush(self) -> None:
        """Write what is pending as one part file (whole or not at all)."""
        self._last = time.monotonic()
        pending = list(self._pending)
        if not pending:
            return
        keys = np.frombuffer(b"".join(k for ks, _ in pending for k in ks), dtype=np.uint8).reshape(-1, 32)
        vectors = np.concatenate([v for _, v in pending])
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._seq):05d}.npz"

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors)
                f.flush()
                os.fsync(f.fileno())

        write_atomic(self.dir / name, write)
        del self._pending[:len(pending)]

    # -- the manifest ----------------------------------------------------------------------
    def _save(self) -> None:
        self.manifest["updated"] = now()
        self.manifest["dim"] = self.dim
        text = json.dumps(self.manifest, indent=1, sort_keys=True, default=str)
        write_atomic(self.dir / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def complete(self, coverage: str) -> bool:
        return (self.manifest["tasks"].get(coverage) or {}).get("status") == "complete"

    def begin_task(self, coverage: str, name: str, fingerprint: str, settings: dict) -> None:
        self.manifest["tasks"][coverage] = {
            "task": name, "fingerprint": fingerprint, "settings": settings, "status": "running",
            "started": now(), "host": socket.gethostname(), "pid": os.getpid(), "command": list(sys.argv),
        }
        self._save()

    def finish_task(self, coverage: str, **figures) -> None:
        self.flush()
        entry = self.manifest["tasks"][coverage]
        entry.update(status="complete", finished=now(), **figures)
        self._save()
