"""Reading what a leaderboard is built from, through the result store only.

* result files and failure records anywhere under the given folders (``ResultStore.load_all``);
* sweep manifests ``evalkit_job.json`` (one per job of a multirun, written by the Hydra
  callback): they name the pairs a sweep asked for, so a pair whose job was killed shows as
  missing instead of vanishing, and point to the results folder each job used.

A row is a model variant (plus its revision): two configurations never share a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.results import FailureRecord, ModelBlock, ResultFile, ResultStore, read_failure
from evalkit.results.records import NO_REVISION
from evalkit.tasks.base import PERFORMANCE

MANIFEST_NAME = "evalkit_job.json"


def row_id(name: str, revision: str | None) -> str:
    """A row's key: the variant's name, and the revision when one is pinned."""
    return name if revision in (None, "", NO_REVISION) else f"{name} @{revision[:12]}"


@dataclass
class Pair:
    """Everything on disk about one (row, task) pair."""

    result: ResultFile | None = None
    result_file: Path | None = None
    failure: FailureRecord | None = None
    failure_file: Path | None = None
    expected: dict | None = None  # the manifest that asked for this pair, if any


@dataclass
class Scan:
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    models: dict[str, ModelBlock] = field(default_factory=dict)
    perf: dict[str, ResultFile] = field(default_factory=dict)  # row -> the perf benchmark's result
    perf_files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)

    def add_result(self, path: Path, record: ResultFile) -> None:
        model = record.evalkit.model
        row = row_id(model.variant, model.revision)
        self.models.setdefault(row, model)
        if record.evalkit.task.type == PERFORMANCE:
            self.perf[row], self.perf_files[row] = record, path
            return
        pair = self.pairs.setdefault((row, record.task_name), Pair())
        if pair.result is not None and pair.result_file != path:
            older, newer = sorted([(pair.result, pair.result_file), (record, path)], key=lambda r: r[0].evalkit.date)
            if older[0].evalkit.config_hash != newer[0].evalkit.config_hash:
                self.warnings.append(f"{row} on {record.task_name}: two results with different configs; "
                                     f"kept the newer {newer[1]}, ignored {older[1]}")
            record, path = newer
        pair.result, pair.result_file = record, path

    def add_failure(self, path: Path, failure: FailureRecord) -> None:
        if failure.task.type == PERFORMANCE:
            return
        row = row_id(failure.model.variant, failure.model.revision)
        self.models.setdefault(row, failure.model)
        pair = self.pairs.setdefault((row, failure.task.name), Pair())
        if pair.failure is None or failure.date > pair.failure.date:
            pair.failure, pair.failure_file = failure, path

    def add_folder(self, root: Path) -> None:
        for found in ResultStore(root).load_all():
            real = found.path.resolve()
            if real in self.seen:
                continue
            self.seen.add(real)
            if found.result is not None:
                self.add_result(found.path, found.result)
            elif found.failure is not None:
                self.add_failure(found.path, found.failure)
        for manifest in sorted(root.rglob(MANIFEST_NAME)):
            self.add_manifest(manifest)

    def add_manifest(self, path: Path) -> None:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.warnings.append(f"unreadable sweep manifest {path}: {exc}")
            return
        label, revision, variant_id = manifest.get("model"), manifest.get("revision"), manifest.get("variant_id")
        if not label or not variant_id:
            self.warnings.append(f"job {path.parent.name} failed before its model was known: {manifest.get('error')}")
            return
        row = row_id(label, revision)
        store = ResultStore(Path(manifest.get("results_dir") or "."))
        for task in manifest.get("tasks") or []:
            # The sweep's own results folder may lie outside the folders given: read the pair there.
            rfile, ffile = store.path(variant_id, revision, task), store.failure_path(variant_id, revision, task)
            if rfile.exists() and rfile.resolve() not in self.seen:
                self.seen.add(rfile.resolve())
                record = store.read(rfile)
                if record is not None:
                    self.add_result(rfile, record)
            if ffile.exists() and ffile.resolve() not in self.seen:
                self.seen.add(ffile.resolve())
                failure = read_failure(ffile)
                if failure is not None:
                    self.add_failure(ffile, failure)
            if task in ("perf",) and row in self.perf:
                continue
            pair = self.pairs.setdefault((row, task), Pair())
            pair.expected = {**manifest, "manifest": str(path)}
            if row not in self.models:
                self.models[row] = ModelBlock(name=manifest.get("model_name") or label, variant=label,
                                              variant_id=variant_id, revision=revision,
                                              config=manifest.get("model_config") or {})


def scan(sources: list[Path]) -> Scan:
    found = Scan()
    for src in sources:
        found.add_folder(Path(src))
    return found
