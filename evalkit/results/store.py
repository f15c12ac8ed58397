"""The result store: where results of a model variant live, and the only code that reads or
writes them (runner, leaderboard, perf and seed reports all come through here).

Layout (mteb's, so ``mteb.ResultCache`` / ``TaskResult.from_disk`` read it)::

    <root>/<variant_id>/<revision>/model_meta.json
    <root>/<variant_id>/<revision>/<Task>.json            ResultFile (mteb TaskResult + evalkit block)
    <root>/<variant_id>/<revision>/<Task>.items.json.gz   per-item scores (results.items)
    <root>/<variant_id>/<revision>/_failures/<Task>.json  FailureRecord
    <root>/<variant_id>/<revision>/_superseded/…          results of another config that were
                                                          in the way: kept, never overwritten

Every write is atomic (temp file + rename). A result is only replaced by one of the same
config hash; one of another config is moved to ``_superseded/`` first, with a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from evalkit.results.files import atomic_write_bytes, atomic_write_json, check_writable_folder, read_json, redact
from evalkit.results.items import ITEMS_SUFFIX, TaskItems, items_path, read_items
from evalkit.results.records import NO_REVISION, FailureRecord, ResultFile

log = logging.getLogger("evalkit.results")

FAILURES_DIR = "_failures"
SUPERSEDED_DIR = "_superseded"
MODEL_META = "model_meta.json"


def safe_name(name: str) -> str:
    return name.replace("/", "__")


@dataclass
class Found:
    """One file the store read: a result or a failure record, and where it lies."""

    path: Path
    result: ResultFile | None = None
    failure: FailureRecord | None = None


class ResultSink(Protocol):
    """Where the runner files a task's output: the result store, or a stack's own sink (an
    encode-only shard job files each task in its shard's manifest)."""

    def done(self, texts) -> str | None:
        """A record status when this task needs no evaluation (its output is filed already), else None."""

    def file(self, record: ResultFile, items: TaskItems | None = None) -> Filed: ...


@dataclass
class Filed:
    """Where one task's output went (a ``sink``'s answer): the status of its run record, the
    file or folder, and the result it holds (None where the output is not a result)."""

    status: str  # "ok": a result file | "encoded": a shard job's manifest (evalkit.encoders.layers.shard_job)
    path: Path | None
    result: ResultFile | None


class ResultStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- paths ------------------------------------------------------------------------------
    def folder(self, variant_id: str, revision: str | None) -> Path:
        return self.root / safe_name(variant_id) / safe_name(revision or NO_REVISION)

    def path(self, variant_id: str, revision: str | None, task: str) -> Path:
        return self.folder(variant_id, revision) / f"{task}.json"

    def failure_path(self, variant_id: str, revision: str | None, task: str) -> Path:
        return self.folder(variant_id, revision) / FAILURES_DIR / f"{task}.json"

    def check_writable(self) -> None:
        """Fail before any model loads when results cannot be written (names the folder)."""
        check_writable_folder(self.root, "results", "paths.results_dir (or EVALKIT_OUTPUT_DIR) to a folder you can write")

    # -- reading ----------------------------------------------------------------------------
    def read(self, path: Path) -> ResultFile | None:
        data = read_json(path)
        record = ResultFile.from_json(data)
        if record is None and Path(path).exists():
            log.warning("%s: not a complete evalkit result (truncated or foreign); it will be recomputed", path)
        return record

    def find_complete(self, variant_id: str, revision: str | None, task: str, *, config_hash: str,
                      fingerprint: str, expected: dict[str, list[str]] | None) -> ResultFile | None:
        """The result on disk for exactly this config and data, with every split/subset, or None."""
        path = self.path(variant_id, revision, task)
        if not path.exists():
            return None
        record = self.read(path)
        if record is None:
            return None
        block = record.evalkit
        if block.config_hash != config_hash or block.task.fingerprint != fingerprint:
            return None
        if record.task_name != task or not record.covers(expected):
            log.warning("%s: incomplete result (a split or subset is missing); recomputing", path)
            return None
        return record

    def load_items(self, result_path: Path) -> TaskItems | None:
        return read_items(items_path(result_path))

    def load_all(self) -> Iterator[Found]:
        """Every result and failure record under the root (any depth), skipping other files."""
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*.json")):
            if path.name == MODEL_META or SUPERSEDED_DIR in path.parts or any(
                p.startswith(".") for p in path.relative_to(self.root).parts
            ):
                continue
            if path.parent.name == FAILURES_DIR:
                failure = read_failure(path)
                if failure is not None:
                    yield Found(path, failure=failure)
            elif (path.parent / MODEL_META).exists():
                result = self.read(path)
                if result is not None:
                    yield Found(path, result=result)

    # -- writing ----------------------------------------------------------------------------
    # -- as the runner's sink --------------------------------------------------------------
    def done(self, texts) -> str | None:
        """Nothing to add per task: the runner asks ``find_complete`` before it builds any model."""
        return None

    def file(self, record: ResultFile, items: TaskItems | None = None) -> Filed:
        """The result file, status "ok"."""
        return Filed("ok", self.save(record, items), record)

    def save(self, record: ResultFile, items: TaskItems | None = None) -> Path:
        model = record.evalkit.model
        path = self.path(model.variant_id, model.revision, record.task_name)
        self._keep_other_config(path, record.evalkit.config_hash)
        meta = path.parent / MODEL_META
        if not meta.exists():
            atomic_write_json(meta, {"name": model.variant_id, "revision": model.revision or NO_REVISION,
                                     "evalkit_variant": model.variant, "evalkit_model": model.name})
        if items is not None:
            ipath = items_path(path)
            atomic_write_bytes(ipath, items.to_bytes())
            record.evalkit.items_file = ipath.name
        atomic_write_json(path, redact(record.to_json()))
        self.failure_path(model.variant_id, model.revision, record.task_name).unlink(missing_ok=True)
        return path

    def save_failure(self, failure: FailureRecord) -> Path | None:
        path = self.failure_path(failure.model.variant_id, failure.model.revision, failure.task.name)
        try:
            atomic_write_json(path, redact(failure.model_dump(mode="json")))
            return path
        except OSError as exc:  # never hide the original error behind this one
            log.warning("could not write the failure record %s: %s", path, exc)
            return None

    def _keep_other_config(self, path: Path, config_hash: str) -> None:
        """A result of another config in the way is moved aside, never overwritten."""
        if not path.exists():
            return
        old = ResultFile.from_json(read_json(path))
        old_hash = old.evalkit.config_hash if old is not None else "unreadable"
        if old_hash == config_hash:
            return
        target_dir = path.parent / SUPERSEDED_DIR
        target_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for src in (path, items_path(path)):
            if src.exists():
                name = src.name.replace(".json", f".{old_hash.removeprefix('sha256:')}.{stamp}.json", 1)
                src.replace(target_dir / name)
        log.warning("%s held a result of another config (%s); moved it to %s/", path, old_hash, target_dir)


def read_failure(path: Path) -> FailureRecord | None:
    data = read_json(path)
    if not isinstance(data, dict) or not data.get("evalkit_failure"):
        if Path(path).exists():
            log.warning("%s: unreadable failure record, ignored", path)
        return None
    try:
        return FailureRecord.model_validate(data)
    except ValueError:
        log.warning("%s: failure record of an older or foreign layout, ignored", path)
        return None


__all__ = ["FAILURES_DIR", "ITEMS_SUFFIX", "Found", "ResultStore", "SUPERSEDED_DIR", "read_failure", "safe_name"]
