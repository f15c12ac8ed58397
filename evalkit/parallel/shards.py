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
:func:`prepare_scoring` finds this model's shard stores that cover the tasks to run, checks
that one set ``0..N-1`` is complete for every task (else it stops, naming the missing shards
and the command that finishes them), that they were computed with this model identity
(else it names the difference), merges them into the embedding cache, and puts a guard
under the cache: a text that is in no shard stops the job instead of being encoded, so a
partial corpus is never scored. Every vector is then a cache hit, and the lazily loaded
model never loads. The result records the shard jobs (``evalkit.computed.shards``).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.cache import CachedEncoder, model_identity, model_key, text_keys
from evalkit.encoders.base import EncoderWrapper, Role, encode_iter
from evalkit.errors import ConfigError, DataError
from evalkit.parallel.store import ShardStore, iter_parts, now, read_manifest, shards_root, write_atomic

log = logging.getLogger("evalkit.parallel")
MERGED = "merged.json"


def shard_of(key: bytes, count: int) -> int:
    return int.from_bytes(key[:8], "big") % count


def coverage(job, task) -> tuple[str, dict]:
    """(id, settings) of the texts a task sends the encoder: its data and every setting that
    chooses or cuts them (task limit, subsets, instruction; long_docs, chunk windows)."""
    from evalkit.schema.fields import stable_hash

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


def _find(encoder, cls):
    while encoder is not None and not isinstance(encoder, cls):
        encoder = getattr(encoder, "inner", None)
    return encoder


def run_shard_job(run, info, stack, tasks) -> list:
    """Encode-only: this shard of every task's texts into its store; no result files."""
    from evalkit.callbacks.base import TaskRecord
    from evalkit.tasks.base import EvalContext

    shard = _find(stack.encoder, ShardEncoder)
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


# -- the scoring job ----------------------------------------------------------------------
class MissGuard(EncoderWrapper):
    """Under the cache of a scoring job: a vector the shards do not have is an error."""

    def __init__(self, inner, where: str):
        super().__init__(inner)
        self.where = where

    def encode_iter(self, texts, *, role, instruction=None):
        raise DataError(f"{len(texts)} {Role(role).value} text(s) of this task are in no shard of {self.where}: "
                        "the shard jobs saw other texts. Not scoring a partial corpus; rerun the shard jobs "
                        "with the same task and encode settings.")
        yield  # pragma: no cover - a generator, like every encode_iter


class ScoringShards:
    """The shard sets a scoring job uses, per task: what ``computed.shards`` records."""

    def __init__(self, by_task: dict[str, list[dict]]):
        self.by_task = by_task

    def for_task(self, name: str) -> list[dict] | None:
        return self.by_task.get(name)


def _manifests(key_dir: Path) -> dict[int, dict[int, dict]]:
    """{N: {i: manifest}} of the shard stores under one model key."""
    sets: dict[int, dict[int, dict]] = {}
    for folder in sorted(key_dir.glob("*-of-*")):
        m = read_manifest(folder)
        if m is not None:
            sets.setdefault(int(m["count"]), {})[int(m["index"])] = m | {"dir": str(folder)}
    return sets


def _done(m: dict | None, cov: str) -> bool:
    return m is not None and (m["tasks"].get(cov) or {}).get("status") == "complete"


def _check_foreign(root: Path, key: str, identity: dict, covs: dict[str, str]) -> None:
    """Unmerged shards of this model name for these tasks under another identity: refuse."""
    for key_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != key):
        merged = _read_json(key_dir / MERGED)
        for sets in _manifests(key_dir).values():
            for m in sets.values():
                if m.get("model_name") != identity["config"].get("name"):
                    continue
                hit = [t for t, cov in covs.items() if cov in m["tasks"] and cov not in merged]
                if hit:
                    raise ConfigError(
                        f"shards of {', '.join(hit)} in {key_dir} were computed with a different model config "
                        f"({identity_difference(m['identity'], identity)}); not using them. Score them with their "
                        f"own config, or delete {key_dir} to evaluate this config without shards.")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _missing_message(task: str, key_dir: Path, sets: dict[int, dict[int, dict]], cov: str) -> str:
    count, have = max(sets.items(), key=lambda kv: (sum(_done(m, cov) for m in kv[1].values()), kv[0]))
    lines, commands = [], []
    for i in range(count):
        m = have.get(i)
        entry = (m or {}).get("tasks", {}).get(cov)
        if _done(m, cov):
            continue
        state = ("no store (never run)" if m is None else "did not run this task" if entry is None else
                 f"started {entry.get('started')} on {entry.get('host')} (pid {entry.get('pid')}), not finished")
        lines.append(f"  shard {i}/{count}: {state}")
        commands.append(f"  {shard_command(f'{i}/{count}')}")
    return (f"cannot score {task} from shards: {len(lines)} of {count} shard(s) missing in {key_dir}:\n"
            + "\n".join(lines) + "\nfinish them (a rerun of a killed shard resumes it), then rerun this command:\n"
            + "\n".join(commands))


def prepare_scoring(job, tasks, stack) -> ScoringShards | None:
    """Merge the complete shard set of every task into the cache (see the module docstring);
    None when no shard store covers these tasks (an ordinary run)."""
    root = shards_root(job.paths.cache)
    if not tasks or not root.is_dir():
        return None
    identity = model_identity(job.model)
    key = model_key(identity)
    covs = {t.name: coverage(job, t)[0] for t in tasks}
    key_dir = root / key
    sets = _manifests(key_dir) if key_dir.is_dir() else {}
    if not any(cov in m["tasks"] for cov in covs.values() for s in sets.values() for m in s.values()):
        _check_foreign(root, key, identity, covs)
        return None
    cached = _find(stack.encoder, CachedEncoder)
    if cached is None or stack.cache is None or stack.cache.mode != "readwrite":
        raise ConfigError(f"shard stores in {key_dir} cover these tasks: scoring from them merges them into the "
                          f"embedding cache, which needs encode.cache=readwrite (this run: {job.encode.cache})")
    chosen: dict[str, int] = {}
    problems = []
    for task, cov in covs.items():
        complete = [n for n, s in sets.items() if all(_done(s.get(i), cov) for i in range(n))]
        if complete:
            chosen[task] = min(complete)
        else:
            problems.append(_missing_message(task, key_dir, sets or {1: {}}, cov))
    if problems:
        raise ConfigError("\n".join(problems))
    for m in (sets[n][i] for n in sorted(set(chosen.values())) for i in range(n)):
        if m["identity"] != identity:
            raise ConfigError(f"shard store {m['dir']} was computed with another model config "
                              f"({identity_difference(m['identity'], identity)}); not using it")
    merged = 0
    for n in sorted(set(chosen.values())):
        for i in range(n):
            for keys, vectors in iter_parts(Path(sets[n][i]["dir"])):
                stack.cache.put_many([k.tobytes() for k in keys], vectors, key)
                merged += len(keys)
    marks = _read_json(key_dir / MERGED) | {
        covs[t]: {"task": t, "count": n, "cache": str(stack.cache.path), "date": now()} for t, n in chosen.items()}
    write_atomic(key_dir / MERGED, lambda tmp: tmp.write_text(json.dumps(marks, indent=1), "utf-8"))
    log.info("merged %d vectors of %s into %s", merged, key_dir, stack.cache.path)
    cached.inner = MissGuard(cached.inner, str(key_dir))
    by_task = {}
    for task, n in chosen.items():
        rows = []
        for i in range(n):
            m = sets[n][i]
            e = m["tasks"][covs[task]]
            c = e.get("computed") or {}
            rows.append({"shard": m["shard"], "texts": e.get("texts"), "encoded": e.get("encoded"),
                         "seconds": e.get("seconds"), "host": e.get("host"), "started": e.get("started"),
                         "finished": e.get("finished"), "workers": c.get("workers"), "devices": c.get("devices"),
                         "store": m["dir"]})
        by_task[task] = rows
    return ScoringShards(by_task)
