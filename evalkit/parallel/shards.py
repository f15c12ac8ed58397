"""Several machines, one task: ``encode.shard=i/N`` shard jobs, then one scoring job.

**Shard job** (``encode.shard=i/N``, e.g. one SLURM array task each): every task is
evaluated as usual, but with :class:`ShardEncoder` where the embedding cache would be. A
text belongs to shard ``i`` when the stable hash of its cache key (model identity, role,
instruction, text) is ``i`` mod ``N`` — so the assignment does not depend on how mteb
batches its encode calls. The shard's texts are encoded once and stored
(``evalkit.parallel.store``); every other text gets a stand-in vector and mteb's scores are
discarded. That is how a shard job sees every text of every task without re-implementing
mteb's data handling, and it is cheap: scoring stand-ins costs little next to encoding
(and no mteb evaluator picks which texts to encode from the vectors it got). Stand-ins are
random unit vectors, not zeros: all-zero vectors make some evaluators divide by zero.
A shard job writes no result file (a failure record if it fails).

**Scoring job** (the same command without ``encode.shard``): before the first task,
:func:`evalkit.parallel.scoring.prepare_scoring` finds this model's shard stores that cover the tasks to run, checks
that one set ``0..N-1`` is complete for every task (else it stops, naming the missing shards
and the command that finishes them), that they were computed with this model identity
(else it names the difference), merges them into the embedding cache, and puts a guard
under the cache: a text that is in no shard stops the job instead of being encoded, so a
partial corpus is never scored. Every vector is then a cache hit, and the lazily loaded
model never loads. The result records the shard jobs (``evalkit.computed.shards``).
"""

from __future__ import annotations

import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.cache import model_identity, model_key, text_keys
from evalkit.encoders.base import EncoderWrapper, Role, encode_iter
from evalkit.parallel.store import ShardStore, shards_root

log = logging.getLogger("evalkit.parallel")


def shard_of(key: bytes, count: int) -> int:
    return int.from_bytes(key[:8], "big") % count


def coverage(job, task) -> tuple[str, dict]:
    """(id, settings) of the texts a task sends the encoder: its data and every setting that
    chooses or cuts them (task limit, subsets, instruction; long_docs, chunk windows)."""
    from evalkit.fields import stable_hash

    scoring = job.scoring_config()
    settings = {"task": scoring["task"], "encode": scoring["encode"]}
    return stable_hash({"name": task.name, "fingerprint": task.fingerprint, **settings}), settings


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def identity_difference(theirs: dict, ours: dict) -> str:
    a, b = _flat(theirs), _flat(ours)
    diffs = [f"{k.replace('config.', 'model.', 1)}: {a.get(k)!r} in the shards, {b.get(k)!r} here"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(diffs) or "no difference"


def shard_command(shard: str) -> str:
    """The command that computes one shard: this run's own command line plus ``encode.shard``."""
    argv = list(sys.argv)
    if argv and ("evalkit" in Path(argv[0]).parts or Path(argv[0]).name == "evalkit"):
        args = [a for a in argv[1:] if a not in ("-m", "--multirun") and "encode.shard=" not in a]
        return shlex.join(["python", "-m", "evalkit", *args, f"encode.shard={shard}"])
    return f"python -m evalkit <this run's overrides> encode.shard={shard}"


# -- shard jobs ---------------------------------------------------------------------------
class ShardEncoder(EncoderWrapper):
    """Where the cache would be in a shard job: encodes and stores this shard's texts,
    answers every text with a stand-in (the scores of a shard job are discarded)."""

    def __init__(self, inner, backend, store: ShardStore):
        super().__init__(inner)
        self.backend, self.store = backend, store
        self.task_keys: set[bytes] = set()  # this shard's texts of the current task
        self.encoded = 0

    def _dim(self) -> int:
        return self.store.dim or self.inner.meta.dim or self.backend.load().meta.dim

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


def shard_encoder(inner, backend, model_cfg, encode_cfg, cache_dir: Path):
    """The stack's layer in place of the cache when ``encode.shard`` is set."""
    index, count = encode_cfg.shard_index()
    identity = model_identity(model_cfg)
    store = ShardStore(shards_root(cache_dir), identity, model_key(identity), index, count,
                       commit_s=encode_cfg.cache_commit_s)
    return ShardEncoder(inner, backend, store)


def find_layer(encoder, cls):
    while encoder is not None and not isinstance(encoder, cls):
        encoder = getattr(encoder, "inner", None)
    return encoder


def run_shard_job(run, info, stack, tasks) -> list:
    """Encode-only: this shard of every task's texts into its store; no result files."""
    from evalkit.callbacks.base import TaskRecord
    from evalkit.tasks.base import EvalContext

    shard = find_layer(stack.encoder, ShardEncoder)
    store = shard.store
    records = []
    for task in tasks:
        cov, settings = coverage(run.job, task)
        if store.complete(cov):
            log.info("%s: shard %s already complete in %s", task.name, run.job.encode.shard, store.dir)
            records.append(TaskRecord(run.variant.label, task.name, "encoded"))
            continue
        run.hooks.on_task_start(info, task)
        store.begin_task(cov, task, settings)
        shard.task_keys, shard.encoded = set(), 0
        before, t0 = stack.stats.snapshot(), time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix="evalkit-shard-") as work:
                ctx = EvalContext(hooks=run.hooks, work_dir=Path(work), model_load_seconds=info.model_load_seconds,
                                  backend=stack.backend, stats=stack.stats)
                task.evaluate(stack.encoder, ctx)  # scores of stand-in vectors: discarded (module docstring)
        finally:
            store.flush()  # whatever was computed stays, also when the job stops here
        run.hooks.task_figures(info, task)  # closes the profiler's scope of this task (no result to put figures in)
        loaded = stack.backend.loaded
        computed = getattr(loaded, "computed", None) or {
            "workers": 1, "devices": [loaded.meta.device] if loaded is not None else []}
        store.finish_task(cov, texts=len(shard.task_keys), encoded=shard.encoded,
                          seconds=round(time.perf_counter() - t0, 3), encode=stack.stats.since(before),
                          computed=computed)
        log.info("%s: shard %s holds %d texts (%d encoded now) in %s", task.name, run.job.encode.shard,
                 len(shard.task_keys), shard.encoded, store.dir)
        record = TaskRecord(run.variant.label, task.name, "encoded")
        run.hooks.on_task_end(info, task, record)
        records.append(record)
    return records
