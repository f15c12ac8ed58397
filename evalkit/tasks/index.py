"""The task index: one place that knows every task name and how to load it.

It discovers built-in specs (``tasks/<name>.yaml``), the local mirrors of MTEB tasks, the
task kinds with a module of their own (``KINDS``: the perf benchmark), and a user's spec
(``task.spec``), and fails on duplicate names. Any other name goes to mteb (its task
registry, data from the Hub when reachable); ``task.benchmark`` expands an mteb benchmark
into its tasks. A kind's own settings are its section of ``task:`` (``task.perf.…``),
validated here against the kind's ``Settings``. Cheap to build: no mteb or torch import.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from pydantic import ValidationError

from evalkit.errors import ConfigError, unknown_name
from evalkit.fields import format_validation_error
from evalkit.resources import tasks_dir
from evalkit.schema import PathsConfig, TaskConfig
from evalkit.tasks import perf
from evalkit.tasks.base import Task
from evalkit.tasks.mteb_mirror import MIRRORS
from evalkit.tasks.spec import builtin_task_names, load_spec

log = logging.getLogger("evalkit.tasks")

# Task kinds with a module of their own: KIND (name and settings section), NAMES, Settings, load().
KINDS = {module.KIND: module for module in (perf,)}


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # builtin | user | mteb-mirror | one of KINDS
    path: Path | None = None  # the spec file


def mteb_instructions() -> dict[str, str]:
    path = tasks_dir() / "_mteb_instructions.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


class TaskIndex:
    def __init__(self, user_spec: str | Path | None = None):
        self.entries: dict[str, Entry] = {}
        self.benchmark_subsets: dict[str, list[str] | None] = {}  # filled by task.benchmark expansion
        for name in builtin_task_names():
            self._add(Entry(name, "builtin", tasks_dir() / f"{name}.yaml"))
        for name in MIRRORS:
            self._add(Entry(name, "mteb-mirror"))
        for kind, module in KINDS.items():
            for name in module.NAMES:
                self._add(Entry(name, kind))
        if user_spec:
            spec, _ = load_spec(Path(user_spec))
            self._add(Entry(spec.name, "user", Path(user_spec)))

    def _add(self, entry: Entry) -> None:
        if entry.name in self.entries:
            other = self.entries[entry.name]
            where = lambda e: f"{e.kind} {e.path or ''}".strip()  # noqa: E731
            raise ConfigError(f"two tasks are named {entry.name!r}: {where(other)} and {where(entry)}; rename one")
        self.entries[entry.name] = entry

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self.entries.items() if kind is None or e.kind == kind)

    # -- loading ------------------------------------------------------------------------------
    def resolve_names(self, cfg: TaskConfig) -> list[str]:
        """``task.names`` (with a user spec's placeholder 'user' replaced) plus a benchmark's tasks."""
        names = list(cfg.names)
        if cfg.spec:
            user = [e.name for e in self.entries.values() if e.kind == "user"]
            names = [user[0] if n == "user" else n for n in names]
        elif "user" in names:
            raise ConfigError("task=user needs your spec file: python -m evalkit task=user task.spec=path/to/my_task.yaml")
        if cfg.benchmark:
            from evalkit.tasks.benchmarks import benchmark_task_names

            names += [n for n in benchmark_task_names(cfg.benchmark, self, cfg, hub_reachable) if n not in names]
        return names

    def load_all(self, cfg: TaskConfig, paths: PathsConfig) -> list[Task]:
        """Every task, loaded before any model is, so a typo or missing data fails in seconds."""
        for kind in KINDS:
            kind_settings(cfg, kind)
        tasks = []
        for name in self.resolve_names(cfg):
            t0 = time.perf_counter()
            task = self.load(name, cfg, paths)
            task.data_load_seconds = time.perf_counter() - t0
            tasks.append(task)
        return tasks

    def load(self, name: str, cfg: TaskConfig, paths: PathsConfig) -> Task:
        from evalkit.data.raw import fetch_settings

        entry = self.entries.get(name)
        raw, fetch = paths.raw, fetch_settings(paths)  # raw files: verified, pulled on first use
        if entry is not None and entry.kind in KINDS:
            return KINDS[entry.kind].load(name, kind_settings(cfg, entry.kind), paths)
        if entry is not None and entry.kind in ("builtin", "user"):
            from evalkit.tasks.spec_task import spec_task

            spec, base = load_spec(entry.path)
            task = spec_task(spec, base, cfg, raw, paths.cache, source=entry.kind, fetch=fetch)
        elif entry is not None and entry.kind == "mteb-mirror":
            from evalkit.tasks.mteb_mirror import load_mirrored_task

            subsets = cfg.subsets or self.benchmark_subsets.get(name)
            task = load_mirrored_task(name, raw, subsets=subsets, limit=cfg.limit, fetch=fetch)
        else:
            task = self._hub_task(name, cfg, raw)
        if cfg.instruction is not None:
            task.instruction = cfg.instruction
        elif task.instruction is None:
            task.instruction = mteb_instructions().get(name) or _metadata_prompt(task)
        return task

    def _hub_task(self, name: str, cfg: TaskConfig, raw: Path | None) -> Task:
        import mteb

        from evalkit.tasks.mteb_task import MtebTask

        try:
            mteb_task = mteb.get_task(name)
        except (KeyError, ValueError):
            err = unknown_name("task", name, self.names())
            raise type(err)(f"{err} (or any MTEB task name, with the Hub reachable)") from None
        if not hub_reachable():
            hint = f"tasks with a local mirror: {', '.join(sorted(MIRRORS))}"
            raise ConfigError(f"task {name!r}: the Hugging Face Hub is unreachable (or HF_HUB_OFFLINE=1) and no local "
                              f"data is configured; {hint}.")
        subsets = cfg.subsets or self.benchmark_subsets.get(name)
        if subsets:
            mteb_task = mteb_task.filter_languages(None, hf_subsets=subsets)
        revision = (mteb_task.metadata.dataset or {}).get("revision", "unknown")
        return MtebTask(mteb_task, fingerprint=f"hub:{revision}", source="hub", limit=cfg.limit, subsets=subsets)


def kind_settings(cfg: TaskConfig, kind: str):
    """A task kind's own section of ``task:`` (``task.perf``), validated; every other section is an error."""
    sections = cfg.kind_settings()
    unknown = sorted(set(sections) - set(KINDS))
    if unknown:
        fields = sorted(set(TaskConfig.model_fields) | set(KINDS))
        raise ConfigError(f"unknown task field(s) {', '.join(repr(u) for u in unknown)}; valid: {', '.join(fields)}")
    try:
        return KINDS[kind].Settings(**sections.get(kind, {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid task.{kind} settings:\n{format_validation_error(exc, prefix=f'{kind}.')}") from None


def _metadata_prompt(task) -> str | None:
    mteb_task = getattr(task, "mteb_task", None)
    prompt = mteb_task.metadata.prompt if mteb_task is not None else None
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        return prompt.get("query")
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect instead of a screen of retries from huggingface_hub."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
