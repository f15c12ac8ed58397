"""The scoring job of a sharded evaluation: merge complete shard sets, then score as usual.

See :mod:`evalkit.parallel.shards` for the whole picture. :func:`prepare_scoring` runs before
the first task of a run without ``encode.shard``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evalkit.cache import CachedEncoder, model_identity, model_key
from evalkit.encoders.base import EncoderWrapper, Role
from evalkit.errors import ConfigError, DataError
from evalkit.parallel.shards import coverage, find_layer, identity_difference, shard_command
from evalkit.parallel.store import iter_parts, now, read_manifest, shards_root, write_atomic

log = logging.getLogger("evalkit.parallel")
MERGED = "merged.json"  # per model key: which tasks' shard sets went into which cache


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
    cached = find_layer(stack.encoder, CachedEncoder)
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
