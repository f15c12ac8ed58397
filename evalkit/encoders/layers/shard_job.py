"""Several machines, one task: the shard job (``encode.shard=i/N``, e.g. one SLURM array task each).

The job runs like any other — the runner evaluates every task — but the builder puts a
:class:`ShardEncoder` in the cache's slot and files the tasks through it (its ``sink``):

* A text belongs to shard ``i`` when the stable hash of its cache key (model identity, role,
  instruction, text) is ``i`` mod ``N``, so the assignment does not depend on how mteb batches
  its encode calls. This shard's texts are encoded once and stored (``shard_store``: plain
  ``.npz`` parts, a new one every ``encode.cache_commit_s``, so a killed job resumes).
* Every text gets a stand-in vector: random unit vectors (all-zero ones make some evaluators
  divide by zero). That is how a shard job sees every text of every task without
  re-implementing mteb's data handling, and it is cheap: scoring stand-ins costs little next to
  encoding (and no mteb evaluator picks which texts to encode from the vectors it got).
* The scores of stand-ins mean nothing: a task's output is filed as "encoded" in the shard's
  manifest (texts held, texts encoded now, seconds, counters, how it was computed), never as a
  result file; a task the manifest already has complete is not evaluated again.

The scoring job (the same command without ``encode.shard``) merges the complete shard sets
into the embedding cache first: ``evalkit.encoders.layers.shard_merge``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evalkit.encoders.base import EncoderWrapper, Role, TaskTexts, encode_iter
from evalkit.encoders.layers.cache import model_identity, model_key, text_keys
from evalkit.encoders.layers.shard_store import ShardStore, shards_root
from evalkit.results import Filed

log = logging.getLogger("evalkit.shards")


def shard_of(key: bytes, count: int) -> int:
    return int.from_bytes(key[:8], "big") % count


class ShardEncoder(EncoderWrapper):
    """In the cache's slot of a shard job: stores this shard's vectors, answers stand-ins."""

    def __init__(self, inner, store: ShardStore, model_dim):
        super().__init__(inner)
        self.store = store
        self.model_dim = model_dim  # () -> the model's output dimension (loads it): stand-ins need one
        self.task: TaskTexts | None = None
        self.task_keys: set[bytes] = set()  # this shard's texts of the current task
        self.encoded = 0

    # -- the Encoder protocol --------------------------------------------------------------
    def encode_iter(self, texts: list[str], *, role: Role, instruction: str | None = None):
        if not texts:
            return
        keys = text_keys(self.store.model_key, role, instruction, texts)
        mine = [i for i, k in enumerate(keys) if shard_of(k, self.store.count) == self.store.index]
        self.task_keys.update(keys[i] for i in mine)
        todo, seen = [], set()
        for i in mine:
            if keys[i] not in self.store and keys[i] not in seen:
                seen.add(keys[i])
                todo.append(i)
        if todo:  # streamed into the store: a part file at least every commit_s seconds
            for idx, vecs in encode_iter(self.inner, [texts[i] for i in todo], role=role, instruction=instruction):
                self.store.add([keys[todo[j]] for j in idx], vecs)
                self.encoded += len(idx)
        rng = np.random.default_rng(int.from_bytes(keys[0][:8], "big"))  # two sides of STS pairs differ
        stand_in = rng.standard_normal((len(texts), self._dim())).astype(np.float32)
        yield np.arange(len(texts)), stand_in / np.linalg.norm(stand_in, axis=1, keepdims=True)

    def _dim(self) -> int:
        return self.store.dim or self.inner.meta.dim or self.model_dim()

    # -- the task hooks ------------------------------------------------------------------
    def task_started(self, texts: TaskTexts) -> None:
        self.task, self.task_keys, self.encoded = texts, set(), 0
        self.store.begin_task(texts.id, texts.name, texts.fingerprint, texts.settings)

    def task_finished(self, texts: TaskTexts, ok: bool) -> None:
        self.store.flush()  # whatever was computed stays, also when the job stops here

    # -- the sink: where this job's task outputs go ----------------------------------------
    def done(self, texts: TaskTexts) -> str | None:
        if self.store.complete(texts.id):
            log.info("%s: shard %d/%d already complete in %s", texts.name, self.store.index, self.store.count,
                     self.store.dir)
            return "encoded"
        return None

    def file(self, result, items) -> Filed:
        """Mark the task complete in the manifest (the stand-in scores are dropped)."""
        block = result.evalkit
        computed = block.computed or {"workers": 1, "devices": [block.device] if block.device else []}
        self.store.finish_task(self.task.id, texts=len(self.task_keys), encoded=self.encoded,
                               seconds=round(block.wall_seconds["task"], 3), encode=block.encode, computed=computed)
        log.info("%s: shard %d/%d holds %d texts (%d encoded now) in %s", self.task.name, self.store.index,
                 self.store.count, len(self.task_keys), self.encoded, self.store.dir)
        return Filed("encoded", self.store.dir, None)


def shard_encoder(inner, model_cfg, encode_cfg, cache_dir: Path, model_dim) -> ShardEncoder:
    """The layer in the cache's slot when ``encode.shard`` is set."""
    index, count = encode_cfg.shard_index()
    identity = model_identity(model_cfg)
    store = ShardStore(shards_root(cache_dir), identity, model_key(identity), index, count,
                       commit_s=encode_cfg.cache_commit_s)
    return ShardEncoder(inner, store, model_dim)
