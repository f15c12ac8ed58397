"""The scoring job of a sharded evaluation (the shard jobs' command without ``encode.shard``):
:class:`ShardMerge`, the layer right under the embedding cache of every run that is not a
shard job itself (``evalkit.encoders.layers.shard_job``).

Before the first task (``start``) it looks for this model's shard stores that cover the tasks
to run. None: it passes every text through (an ordinary run). Otherwise it checks that one
set ``0..N-1`` is complete for every task (else it stops, naming the missing shards and the
command that finishes each), that they were computed with this model identity (else it names
the difference), merges them into the embedding cache, and from then on refuses to encode: a
text that is in no shard stops the job, so a partial corpus is never scored. Every vector is
then a cache hit, and the lazily loaded model never loads. ``describe()`` adds the shard jobs
the current task's vectors came from (``evalkit.computed.shards``).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

from evalkit.encoders.base import EncoderWrapper, Role, TaskTexts, encode_iter
from evalkit.encoders.layers.cache import model_identity, model_key
from evalkit.encoders.layers.shard_store import (identity_difference, iter_parts, now, read_manifest, shards_root,
                                                 write_atomic)
from evalkit.errors import ConfigError, DataError

log = logging.getLogger("evalkit.shards")
MERGED = "merged.json"  # per model key: which tasks' shard sets went into which cache


def shard_command(shard: str) -> str:
    """The command that computes one shard: this run's own command line plus ``encode.shard``."""
    argv = list(sys.argv)
    if argv and ("evalkit" in Path(argv[0]).parts or Path(argv[0]).name == "evalkit"):
        args = [a for a in argv[1:] if a not in ("-m", "--multirun") and "encode.shard=" not in a]
        return shlex.join(["python", "-m", "evalkit", *args, f"encode.shard={shard}"])
    return f"python -m evalkit <this run's overrides> encode.shard={shard}"


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


class ShardMerge(EncoderWrapper):
    """Under the cache of every run but a shard job: merges the shard sets that cover its tasks."""

    def __init__(self, inner, cache, model_cfg, cache_dir: Path, cache_mode: str):
        super().__init__(inner)
        self.cache, self.root, self.cache_mode = cache, shards_root(cache_dir), cache_mode
        self.identity = model_identity(model_cfg)
        self.key = model_key(self.identity)
        self.key_dir = self.root / self.key
        self.by_task: dict[str, list[dict]] | None = None  # shard rows per task once merged
        self.current: str | None = None

    def encode_iter(self, texts, *, role, instruction=None):
        if self.by_task is None:
            yield from encode_iter(self.inner, texts, role=role, instruction=instruction)
            return
        raise DataError(f"{len(texts)} {Role(role).value} text(s) of this task are in no shard of {self.key_dir}: "
                        "the shard jobs saw other texts. Not scoring a partial corpus; rerun the shard jobs "
                        "with the same task and encode settings.")

    def task_started(self, texts: TaskTexts) -> None:
        self.current = texts.name

    @property
    def reaches_model(self) -> bool:
        return self.by_task is None  # merged: every vector is the shards', a text in none stops the job

    def describe(self) -> dict:
        found = self.inner.describe()
        if self.by_task is not None and self.current in self.by_task:
            found = {**found, "shards": self.by_task[self.current]}
        return found

    def start(self, tasks: list[TaskTexts]) -> None:
        """Merge the complete shard set of every task into the cache (see the module docstring)."""
        if not tasks or not self.root.is_dir():
            return
        covs = {t.name: t.id for t in tasks}
        sets = _manifests(self.key_dir) if self.key_dir.is_dir() else {}
        if not any(cov in m["tasks"] for cov in covs.values() for s in sets.values() for m in s.values()):
            _check_foreign(self.root, self.key, self.identity, covs)
            return
        if self.cache is None or self.cache_mode != "readwrite":
            raise ConfigError(f"shard stores in {self.key_dir} cover these tasks: scoring from them merges them into "
                              f"the embedding cache, which needs encode.cache=readwrite (this run: {self.cache_mode})")
        chosen = self._complete_sets(covs, sets)
        self._merge(chosen, covs, sets)
        self.by_task = {task: [_shard_row(sets[n][i], covs[task]) for i in range(n)] for task, n in chosen.items()}

    def _complete_sets(self, covs: dict[str, str], sets: dict[int, dict[int, dict]]) -> dict[str, int]:
        """Per task, the smallest N whose shards 0..N-1 all finished it; else a ConfigError naming what is missing."""
        chosen: dict[str, int] = {}
        problems = []
        for task, cov in covs.items():
            complete = [n for n, s in sets.items() if all(_done(s.get(i), cov) for i in range(n))]
            if complete:
                chosen[task] = min(complete)
            else:
                problems.append(_missing_message(task, self.key_dir, sets or {1: {}}, cov))
        if problems:
            raise ConfigError("\n".join(problems))
        for m in (sets[n][i] for n in sorted(set(chosen.values())) for i in range(n)):
            if m["identity"] != self.identity:
                raise ConfigError(f"shard store {m['dir']} was computed with another model config "
                                  f"({identity_difference(m['identity'], self.identity)}); not using it")
        return chosen

    def _merge(self, chosen: dict[str, int], covs: dict[str, str], sets: dict[int, dict[int, dict]]) -> None:
        merged = 0
        for n in sorted(set(chosen.values())):
            for i in range(n):
                for keys, vectors in iter_parts(Path(sets[n][i]["dir"])):
                    self.cache.put_many([k.tobytes() for k in keys], vectors, self.key)
                    merged += len(keys)
        marks = _read_json(self.key_dir / MERGED) | {
            covs[t]: {"task": t, "count": n, "cache": str(self.cache.path), "date": now()} for t, n in chosen.items()}
        write_atomic(self.key_dir / MERGED, lambda tmp: tmp.write_text(json.dumps(marks, indent=1), "utf-8"))
        log.info("merged %d vectors of %s into %s", merged, self.key_dir, self.cache.path)


def _shard_row(m: dict, cov: str) -> dict:
    """One shard job of a task, as the result's ``computed.shards`` lists it."""
    e = m["tasks"][cov]
    c = e.get("computed") or {}
    return {"shard": m["shard"], "texts": e.get("texts"), "encoded": e.get("encoded"), "seconds": e.get("seconds"),
            "host": e.get("host"), "started": e.get("started"), "finished": e.get("finished"),
            "workers": c.get("workers"), "devices": c.get("devices"), "store": m["dir"]}
