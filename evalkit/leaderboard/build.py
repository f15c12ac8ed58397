"""Result folders -> :class:`Leaderboard`: the full (model x task) grid, means, ranks, provenance.

What is read (see ``evalkit.results``):

* result files ``<results>/<model>/<revision>/<Task>.json`` (mteb TaskResult + ``evalkit`` block),
  recognised by the ``model_meta.json`` beside them;
* failure records ``<results>/<model>/<revision>/_failures/<Task>.json``;
* sweep manifests ``evalkit_job.json`` (one per job of a multirun, written by the Hydra
  callback): they name the pairs a sweep asked for, so a pair whose job was killed shows
  as missing instead of vanishing from the board.

Scores are never invented: a cell is ``ok`` (score from the result file, exactly what
``mteb.TaskResult.from_disk(path).get_score()`` gives), ``failed`` (reason from the failure
record) or ``missing``. Means cover complete rows only; a partial mean would not compare.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any

import evalkit
from evalkit.leaderboard.schema import (
    Cell,
    Leaderboard,
    ModelEntry,
    ModelSummary,
    Provenance,
    Speed,
    SubsetScore,
    TaskEntry,
)
from evalkit.results import FAILURES_DIR, NO_REVISION, failure_path, read_failure, read_result, result_path

log = logging.getLogger("evalkit.leaderboard")

MANIFEST_NAME = "evalkit_job.json"
# Speed-only tasks (evalkit.perf): no quality score, so not a column of the board; their
# batch-1 latency at 1,024 tokens goes into each model's speed figures instead.
SPEED_TASK_TYPE, SPEED_TASK_NAME = "Performance", "perf"
SCORE_TOLERANCE = 1e-5  # file scores are rounded to 6 digits by mteb; the evalkit block is not


@dataclass
class _Found:
    """Everything on disk about one (model, task) pair."""

    result: dict | None = None
    result_file: Path | None = None
    failure: dict | None = None
    failure_file: Path | None = None
    expected: dict | None = None  # the manifest that asked for this pair, if any


@dataclass
class _Scan:
    pairs: dict[tuple[str, str], _Found] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)  # model id -> raw info
    perf: dict[str, dict] = field(default_factory=dict)  # model id -> perf task figures
    warnings: list[str] = field(default_factory=list)


def model_key(name: str, revision: str | None) -> str:
    return name if revision in (None, "", NO_REVISION) else f"{name}@{revision}"


def build_leaderboard(sources: list[Path | str]) -> Leaderboard:
    """Read results folders and/or sweep folders (any mix, any depth) into a leaderboard."""
    sources = [Path(s) for s in sources]
    for src in sources:
        if not src.exists():
            raise FileNotFoundError(f"no such folder: {src}")
    scan = _Scan()
    seen: set[Path] = set()
    for src in sources:
        _scan_folder(src, scan, seen)
    if not scan.pairs and not scan.perf:
        raise LookupError(
            "no evalkit result files, failure records or sweep manifests under "
            + ", ".join(str(s) for s in sources)
            + " (results live in <results_dir>/<model>/<revision>/<Task>.json)"
        )
    return _assemble(scan, sources)


# ---------------------------------------------------------------------------- reading


def _scan_folder(root: Path, scan: _Scan, seen: set[Path]) -> None:
    for path in sorted(root.rglob("*.json")):
        real = path.resolve()
        if real in seen or path.name == "model_meta.json" or any(p.startswith(".") for p in path.parts[-4:-1]):
            continue
        seen.add(real)
        if path.name == MANIFEST_NAME:
            _add_manifest(path, scan, seen)
        elif path.parent.name == FAILURES_DIR:
            _add_failure(path, scan)
        elif (path.parent / "model_meta.json").exists():
            _add_result(path, scan)


def _add_result(path: Path, scan: _Scan) -> None:
    data = read_result(path)
    if data is None:
        return
    block = data["evalkit"]
    model = block.get("model") or {}
    name = model.get("name") or path.parent.parent.name
    key = (model_key(name, model.get("revision")), data.get("task_name") or path.stem)
    if data.get("kind") == "evalkit.perf" or (block.get("task") or {}).get("type") == SPEED_TASK_TYPE:
        scan.perf[key[0]] = {"latency_1k_ms": block.get("main_score"), "result_file": str(path)}
        scan.models.setdefault(key[0], {}).update(_model_info(name, model))
        return
    found = scan.pairs.setdefault(key, _Found())
    if found.result is not None:
        older, newer = sorted([(found.result, found.result_file), (data, path)], key=lambda r: str(r[0]["evalkit"].get("date")))
        if older[0]["evalkit"].get("config_hash") != newer[0]["evalkit"].get("config_hash"):
            scan.warnings.append(f"{key[0]} on {key[1]}: two results with different configs; kept the newer {newer[1]}, ignored {older[1]}")
        data, path = newer
    found.result, found.result_file = data, path
    scan.models.setdefault(key[0], {}).update(_model_info(name, model))


def _add_failure(path: Path, scan: _Scan) -> None:
    data = read_failure(path)
    if data is None or (data.get("task_info") or {}).get("type") == SPEED_TASK_TYPE or data["task"] == SPEED_TASK_NAME:
        return
    key = (model_key(data["model"], data.get("revision")), data["task"])
    found = scan.pairs.setdefault(key, _Found())
    if found.failure is None or str(data.get("date")) > str(found.failure.get("date")):
        found.failure, found.failure_file = data, path
    info = scan.models.setdefault(key[0], {})
    for k, v in _model_info(data["model"], data.get("model_config") or {}).items():
        info.setdefault(k, v)


def _add_manifest(path: Path, scan: _Scan, seen: set[Path]) -> None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        scan.warnings.append(f"unreadable sweep manifest {path}: {exc}")
        return
    name, revision = manifest.get("model"), manifest.get("revision")
    if not name:
        scan.warnings.append(f"job {path.parent.name} failed before its model was known: {manifest.get('error')}")
        return
    results_dir = Path(manifest.get("results_dir") or "")
    key_model = model_key(name, revision)
    info = scan.models.setdefault(key_model, {})
    for k, v in _model_info(name, manifest.get("model_config") or {}).items():
        info.setdefault(k, v)
    for task in manifest.get("tasks") or []:
        rfile = result_path(results_dir, name, revision, task)
        if task == SPEED_TASK_NAME:
            if rfile.exists():
                _add_result(rfile, scan)
            continue
        found = scan.pairs.setdefault((key_model, task), _Found())
        found.expected = {**manifest, "manifest": str(path)}
        # The sweep's own results folder may lie outside the folders given: read the pair there.
        if found.result is None and rfile.resolve() not in seen and rfile.exists():
            seen.add(rfile.resolve())
            _add_result(rfile, scan)
        ffile = failure_path(results_dir, name, revision, task)
        if found.failure is None and ffile.resolve() not in seen and ffile.exists():
            seen.add(ffile.resolve())
            _add_failure(ffile, scan)


def _model_info(name: str, model: dict) -> dict:
    meta = model.get("meta") or {}
    out = {
        "name": name,
        "revision": model.get("revision"),
        "backend": model.get("backend") or meta.get("backend"),
        "model_id": meta.get("model_id") or model.get("model_id") or model.get("model"),
        "dimension": meta.get("dim") or model.get("dimension"),
        "max_tokens": meta.get("max_tokens") if isinstance(meta.get("max_tokens"), int) else model.get("max_length"),
        "pooling": meta.get("pooling") or model.get("pooling"),
        "dtype": meta.get("dtype") or model.get("dtype"),
    }
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------------- assembling


def _assemble(scan: _Scan, sources: list[Path]) -> Leaderboard:
    warnings = list(scan.warnings)
    cells = {key: _cell(key, found, warnings) for key, found in scan.pairs.items()}
    task_names = sorted({t for _, t in cells})
    model_ids = sorted({m for m, _ in cells} | set(scan.perf))
    for m in model_ids:  # the full grid: a pair nobody ran is missing, never a zero
        for t in task_names:
            if (m, t) not in cells:
                cells[(m, t)] = Cell(model=m, task=t, status="missing", main_score=None, rank=None,
                                     error="not run: no result file or failure record for this pair")
    tasks = [_task_entry(t, scan, cells) for t in task_names]
    _rank_cells(cells, task_names)
    summary = [_summary(m, tasks, cells, scan.perf.get(m)) for m in model_ids]
    _rank_models(summary)
    order = sorted(summary, key=lambda s: (s.rank is None, s.rank or 0, -(s.mean_available or -1e9), s.model))
    models = [_model_entry(s.model, scan.models.get(s.model, {}), cells) for s in order]
    ordered_cells = [cells[(s.model, t)] for s in order for t in task_names]
    return Leaderboard(
        provenance=_provenance(ordered_cells, scan, sources),
        models=models,
        tasks=tasks,
        cells=ordered_cells,
        summary=order,
        warnings=warnings,
    )


def _cell(key: tuple[str, str], found: _Found, warnings: list[str]) -> Cell:
    model, task = key
    if found.result is not None:
        data, block = found.result, found.result["evalkit"]
        subsets, score = _subset_scores(data)
        if score is not None and block.get("main_score") is not None and abs(score - block["main_score"]) > SCORE_TOLERANCE:
            warnings.append(f"{model} on {task}: mteb scores give {score:.6f}, the evalkit block says {block['main_score']:.6f}")
        if found.failure is not None and str(found.failure.get("date")) > str(block.get("date")):
            warnings.append(f"{model} on {task}: a later run failed ({found.failure.get('error')}); showing the earlier result")
        expected_hash = (found.expected or {}).get("config_hash")
        if expected_hash and block.get("config_hash") != expected_hash:
            return Cell(model=model, task=task, status="missing", main_score=None, rank=None,
                        error=f"the result on disk has config {block.get('config_hash')}, the sweep asked for "
                              f"{expected_hash} and its run left no result (killed?)",
                        result_file=str(found.result_file))
        wall = block.get("wall_seconds") or {}
        return Cell(
            model=model, task=task, status="ok", main_score=score, error=None, rank=None, subsets=subsets,
            config_hash=block.get("config_hash"), fingerprint=(block.get("task") or {}).get("fingerprint"),
            date=block.get("date"), device=_device(block), evaluation_seconds=wall.get("task"),
            profile=block.get("profile"), result_file=str(found.result_file),
        )
    if found.failure is not None:
        f = found.failure
        return Cell(
            model=model, task=task, status="failed", main_score=None, rank=None, error=f.get("error") or "failed",
            config_hash=f.get("config_hash"), fingerprint=(f.get("task_info") or {}).get("fingerprint"),
            date=f.get("date"), failure_file=str(found.failure_file), stage=f.get("stage"),
        )
    manifest = found.expected or {}
    log_hint = f" (job log: {manifest['log']})" if manifest.get("log") else ""
    if manifest.get("error"):  # e.g. an invalid config: the job stopped before the runner
        return Cell(model=model, task=task, status="failed", main_score=None, rank=None, stage="config",
                    error=f"the job failed before running: {manifest['error']}{log_hint}")
    status = manifest.get("status", "started")
    reason = ("no result and no failure record: the job was killed or crashed" if status == "started"
              else f"no result and no failure record (job {status})")
    return Cell(model=model, task=task, status="missing", main_score=None, rank=None, error=reason + log_hint)


def _subset_scores(data: dict) -> tuple[list[SubsetScore], float | None]:
    """Per split/subset main scores and their mean: mteb's ``TaskResult.get_score()``."""
    out, values = [], []
    for split, entries in (data.get("scores") or {}).items():
        for entry in entries or []:
            score = entry.get("main_score")
            out.append(SubsetScore(split=split, subset=str(entry.get("hf_subset", "default")),
                                   languages=list(entry.get("languages") or []),
                                   main_score=float(score) if score is not None else None))
            if score is not None:
                values.append(float(score))
    return out, (float(sum(values) / len(values)) if values else None)


def _device(block: dict) -> str | None:
    """'cpu (Intel Xeon ...)' / 'cuda:0 (NVIDIA H100 ...)' when the profiler recorded the hardware."""
    hw = (block.get("profile") or {}).get("device") or {}
    name = (hw.get("gpu") or hw.get("cpu")) if isinstance(hw, dict) else None
    if isinstance(name, dict):
        name = name.get("name")
    return f"{block.get('device')} ({name})" if name else block.get("device")


def _task_entry(name: str, scan: _Scan, cells: dict) -> TaskEntry:
    info: dict[str, Any] = {}
    languages: set[str] = set()
    fingerprints: set[str] = set()
    for (_, t), found in scan.pairs.items():
        if t != name:
            continue
        if found.result is not None:
            task_block = found.result["evalkit"].get("task") or {}
            for k in ("type", "main_metric", "source", "limit"):
                if task_block.get(k) is not None:
                    info[k] = task_block[k]
            for entry in _subset_scores(found.result)[0]:
                languages.update(lang.split("-")[0] for lang in entry.languages)
    for (_, t), found in scan.pairs.items():  # failure records fill in what no result told
        if t == name and found.failure is not None:
            for k, v in (found.failure.get("task_info") or {}).items():
                if k in ("type", "main_metric", "source", "limit") and v is not None:
                    info.setdefault(k, v)
            if not languages:
                languages.update((found.failure.get("task_info") or {}).get("languages") or [])
    for (_, t), cell in cells.items():
        if t == name and cell.fingerprint and cell.status == "ok":
            fingerprints.add(cell.fingerprint)
    if len(fingerprints) > 1:
        scan.warnings.append(f"{name}: results come from {len(fingerprints)} different data fingerprints; scores may not compare")
    return TaskEntry(name=name, type=info.get("type"), languages=sorted(languages), main_metric=info.get("main_metric"),
                     fingerprints=sorted(fingerprints), source=info.get("source"), limit=info.get("limit"))


def _competition_ranks(values: dict[str, float]) -> dict[str, int]:
    """1 = best; equal scores share a rank and the next rank skips (1, 2, 2, 4)."""
    ordered = sorted(values.items(), key=lambda kv: -kv[1])
    ranks = {}
    for i, (key, value) in enumerate(ordered):
        ranks[key] = ranks[ordered[i - 1][0]] if i and value == ordered[i - 1][1] else i + 1
    return ranks


def _rank_cells(cells: dict, task_names: list[str]) -> None:
    for t in task_names:
        scores = {m: c.main_score for (m, tt), c in cells.items() if tt == t and c.status == "ok" and c.main_score is not None}
        for m, r in _competition_ranks(scores).items():
            cells[(m, t)].rank = r


def _scored_tasks(tasks: list[TaskEntry], cells: dict) -> list[TaskEntry]:
    """Tasks that give a quality score. A speed-only task (ok results, none with a score)
    stays out of means; a task nobody finished still counts, so its rows are incomplete."""
    def speed_only(name: str) -> bool:
        ok = [c for (_, tt), c in cells.items() if tt == name and c.status == "ok"]
        return bool(ok) and all(c.main_score is None for c in ok)

    return [t for t in tasks if not speed_only(t.name)]


def _summary(model: str, tasks: list[TaskEntry], cells: dict, perf: dict | None) -> ModelSummary:
    row = {t.name: cells[(model, t.name)] for t in tasks}
    scored = _scored_tasks(tasks, cells)
    ok = {t.name: row[t.name].main_score for t in scored if row[t.name].status == "ok" and row[t.name].main_score is not None}

    def group_mean(names: list[str]) -> float | None:
        return float(mean(ok[n] for n in names)) if names and all(n in ok for n in names) else None

    by_type: dict[str, list[str]] = {}
    by_lang: dict[str, list[str]] = {}
    for t in scored:
        by_type.setdefault(t.type or "unknown", []).append(t.name)
        for lang in t.languages:
            by_lang.setdefault(lang, []).append(t.name)
    complete = bool(scored) and len(ok) == len(scored)
    return ModelSummary(
        model=model,
        tasks_ok=sum(c.status == "ok" for c in row.values()),
        tasks_failed=sum(c.status == "failed" for c in row.values()),
        tasks_missing=sum(c.status == "missing" for c in row.values()),
        complete=complete,
        mean=group_mean([t.name for t in scored]) if complete else None,
        mean_available=float(mean(ok.values())) if ok else None,
        by_type={k: group_mean(v) for k, v in sorted(by_type.items())},
        by_language={k: group_mean(v) for k, v in sorted(by_lang.items())},
        rank=None,
        speed=_speed([c for c in row.values() if c.status == "ok"], perf),
    )


def _speed(cells: list[Cell], perf: dict | None = None) -> Speed:
    tokens = seconds = texts = 0.0
    have_tokens = have_texts = False
    p50s = []
    for c in cells:
        p = c.profile or {}
        enc = (p.get("encode_seconds") or {}).get("total")
        if not isinstance(enc, (int, float)) or enc <= 0:
            continue
        if isinstance(p.get("real_tokens"), (int, float)):
            tokens += p["real_tokens"]
            have_tokens = True
        if isinstance(p.get("texts"), (int, float)):
            texts += p["texts"]
            have_texts = True
        seconds += enc
        lat = p.get("batch_latency_ms") or p.get("request_latency_ms") or {}
        if isinstance(lat.get("p50"), (int, float)):
            p50s.append(lat["p50"])
    return Speed(
        tokens_per_s=round(tokens / seconds, 1) if have_tokens and seconds else None,
        texts_per_s=round(texts / seconds, 2) if have_texts and seconds else None,
        batch_latency_p50_ms=round(float(median(p50s)), 3) if p50s else None,
        latency_1k_ms=(perf or {}).get("latency_1k_ms"),
    )


def _rank_models(summary: list[ModelSummary]) -> None:
    ranks = _competition_ranks({s.model: s.mean for s in summary if s.mean is not None})
    for s in summary:
        s.rank = ranks.get(s.model)


def _model_entry(model: str, info: dict, cells: dict) -> ModelEntry:
    row = [c for (m, _), c in cells.items() if m == model]
    return ModelEntry(
        id=model,
        name=info.get("name", model.split("@")[0]),
        revision=info.get("revision"),
        backend=info.get("backend"),
        model_id=info.get("model_id"),
        dimension=info.get("dimension"),
        max_tokens=info.get("max_tokens"),
        pooling=info.get("pooling"),
        dtype=info.get("dtype"),
        config_hashes=sorted({c.config_hash for c in row if c.config_hash}),
        devices=sorted({c.device for c in row if c.device}),
    )


def _provenance(cells: list[Cell], scan: _Scan, sources: list[Path]) -> Provenance:
    versions: dict[str, set[str]] = {}
    shown = {(c.model, c.task) for c in cells if c.status == "ok"}
    for key, found in scan.pairs.items():
        if key in shown:
            for pkg, v in (found.result["evalkit"].get("versions") or {}).items():
                if v:
                    versions.setdefault(pkg, set()).add(str(v))
    dates = sorted(c.date for c in cells if c.date and c.status == "ok")
    return Provenance(
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        evalkit_version=evalkit.__version__,
        sources=[str(s) for s in sources],
        result_versions={k: sorted(v) for k, v in sorted(versions.items())},
        config_hashes=sorted({c.config_hash for c in cells if c.config_hash}),
        devices=sorted({c.device for c in cells if c.device}),
        dates=[dates[0], dates[-1]] if dates else [],
    )
