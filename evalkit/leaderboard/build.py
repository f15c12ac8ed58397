"""Result folders -> :class:`Leaderboard`: the full (model variant x task) grid, means, ranks,
uncertainty, provenance.

What is read comes through the result store (``evalkit.leaderboard.scan``). Scores are
never invented: a cell is ``ok`` (score from the result file, exactly what
``mteb.TaskResult.from_disk(path).get_score()`` gives), ``failed`` (reason from the failure
record) or ``missing``. Means cover complete rows only; a partial mean would not compare.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from statistics import mean, median
from typing import Any

import evalkit
from evalkit.leaderboard.scan import Pair, Scan, scan
from evalkit.leaderboard.schema import (
    Cell,
    DepthBucket,
    LengthBucket,
    Leaderboard,
    ModelEntry,
    ModelSummary,
    Provenance,
    Speed,
    SubsetScore,
    TaskEntry,
)
from evalkit.leaderboard.zero_shot import zero_shot

log = logging.getLogger("evalkit.leaderboard")

SCORE_TOLERANCE = 1e-5  # file scores are rounded to 6 digits by mteb; the evalkit block is not


def build_leaderboard(sources: list[Path | str], *, baseline: str | None = None,
                      zero_shot_only: bool = False) -> Leaderboard:
    """Read results folders and/or sweep folders (any mix, any depth) into a leaderboard;
    ``zero_shot_only``: means leave out the cells of tasks a model was trained on."""
    sources = [Path(s) for s in sources]
    for src in sources:
        if not src.exists():
            raise FileNotFoundError(f"no such folder: {src}")
    found = scan(sources)
    if not found.pairs and not found.perf:
        raise LookupError(
            "no evalkit result files, failure records or sweep manifests under "
            + ", ".join(str(s) for s in sources)
            + " (results live in <results_dir>/<model variant>/<revision>/<Task>.json)"
        )
    return _assemble(found, sources, baseline, zero_shot_only)


def _assemble(found: Scan, sources: list[Path], baseline: str | None, zero_shot_only: bool = False) -> Leaderboard:
    warnings = list(found.warnings)
    cells = {key: _cell(key, pair, warnings) for key, pair in found.pairs.items()}
    task_names = sorted({t for _, t in cells})
    rows = sorted({m for m, _ in cells} | set(found.perf))
    for m in rows:  # the full grid: a pair nobody ran is missing, never a zero
        for t in task_names:
            if (m, t) not in cells:
                cells[(m, t)] = Cell(model=m, task=t, status="missing", main_score=None, rank=None,
                                     error="not run: no result file or failure record for this pair")
    tasks = [_task_entry(t, found, cells, warnings) for t in task_names]
    _rank_cells(cells, task_names)
    summary = [_summary(m, tasks, cells, found.perf.get(m), zero_shot_only) for m in rows]
    _rank_models(summary)
    order = sorted(summary, key=lambda s: (s.rank is None, s.rank or 0, -(s.mean_available or -1e9), s.model))
    models = [_model_entry(s.model, found, cells) for s in order]
    ordered_cells = [cells[(s.model, t)] for s in order for t in task_names]
    from evalkit.leaderboard.compare import add_uncertainty

    comparisons = add_uncertainty(found, cells, tasks, [s.model for s in order], baseline, warnings)
    return Leaderboard(
        provenance=_provenance(ordered_cells, found, sources),
        models=models, tasks=tasks, cells=ordered_cells, summary=order, comparisons=comparisons,
        baseline=baseline, warnings=warnings, zero_shot_only=zero_shot_only,
    )


def _depth(extra: dict) -> list[DepthBucket] | None:
    buckets = (extra.get("by_depth") or {}).get("buckets")
    fields = set(DepthBucket.model_fields)
    return [DepthBucket(**{k: v for k, v in b.items() if k in fields}) for b in buckets] if buckets else None


def _cell(key: tuple[str, str], pair: Pair, warnings: list[str]) -> Cell:
    model, task = key
    if pair.result is not None:
        record, block = pair.result, pair.result.evalkit
        score = record.mteb_score()
        if score is not None and block.main_score is not None and abs(score - block.main_score) > SCORE_TOLERANCE:
            warnings.append(f"{model} on {task}: mteb scores give {score:.6f}, the evalkit block says {block.main_score:.6f}")
        if pair.failure is not None and pair.failure.date > block.date:
            warnings.append(f"{model} on {task}: a later run failed ({pair.failure.error}); showing the earlier result")
        expected_hash = (pair.expected or {}).get("config_hash")
        if expected_hash and block.config_hash != expected_hash:
            return Cell(model=model, task=task, status="missing", main_score=None, rank=None,
                        error=f"the result on disk has config {block.config_hash}, the sweep asked for "
                              f"{expected_hash} and its run left no result (killed?)",
                        result_file=str(pair.result_file))
        subsets = [SubsetScore(split=sp, subset=sub, languages=langs, main_score=sc)
                   for sp, sub, langs, sc in record.subset_scores()]
        extra = block.extra or {}
        buckets = (extra.get("by_length") or {}).get("buckets")
        trained_on = zero_shot(record)
        return Cell(
            model=model, task=task, status="ok", main_score=score, error=None, rank=None, subsets=subsets,
            config_hash=block.config_hash, fingerprint=block.task.fingerprint, date=block.date,
            device=_device(block), evaluation_seconds=block.wall_seconds.get("task"), profile=block.profile,
            result_file=str(pair.result_file), effective_length=(extra.get("effective_length") or {}).get("tokens"),
            by_length=[LengthBucket(**b) for b in buckets] if buckets else None, by_depth=_depth(extra),
            zero_shot=trained_on[0], training_overlap=trained_on[1],
        )
    if pair.failure is not None:
        f = pair.failure
        return Cell(model=model, task=task, status="failed", main_score=None, rank=None, error=f.error or "failed",
                    config_hash=f.config_hash, fingerprint=f.task.fingerprint, date=f.date,
                    failure_file=str(pair.failure_file), stage=f.stage)
    manifest = pair.expected or {}
    log_hint = f" (job log: {manifest['log']})" if manifest.get("log") else ""
    if manifest.get("error"):  # e.g. an invalid config: the job stopped before the runner
        return Cell(model=model, task=task, status="failed", main_score=None, rank=None, stage="config",
                    error=f"the job failed before running: {manifest['error']}{log_hint}")
    status = manifest.get("status", "started")
    reason = ("no result and no failure record: the job was killed or crashed" if status == "started"
              else f"no result and no failure record (job {status})")
    return Cell(model=model, task=task, status="missing", main_score=None, rank=None, error=reason + log_hint)


def _device(block) -> str | None:
    """'cpu (Intel Xeon ...)' / 'cuda:0 (NVIDIA H100 ...)' when the profiler recorded the hardware."""
    hw = (block.profile or {}).get("device") or {}
    name = (hw.get("gpu") or hw.get("cpu")) if isinstance(hw, dict) else None
    return f"{block.device} ({name})" if name else block.device


def _task_entry(name: str, found: Scan, cells: dict, warnings: list[str]) -> TaskEntry:
    info: dict[str, Any] = {}
    languages: set[str] = set()
    for (_, t), pair in found.pairs.items():
        if t != name:
            continue
        block = pair.result.evalkit.task if pair.result is not None else (pair.failure.task if pair.failure else None)
        if block is None:
            continue
        for k in ("type", "main_metric", "source", "limit"):
            if getattr(block, k) is not None and (pair.result is not None or k not in info):
                info[k] = getattr(block, k)
        if pair.result is not None:
            for *_, langs, _ in pair.result.subset_scores():
                languages.update(lang.split("-")[0] for lang in langs)
        elif not languages:
            languages.update(lang.split("-")[0] for lang in block.languages)
    fingerprints = {c.fingerprint for (_, t), c in cells.items() if t == name and c.fingerprint and c.status == "ok"}
    if len(fingerprints) > 1:
        warnings.append(f"{name}: results come from {len(fingerprints)} different data fingerprints; "
                        "their scores are not compared")
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


def _summary(model: str, tasks: list[TaskEntry], cells: dict, perf, zero_shot_only: bool = False) -> ModelSummary:
    row = {t.name: cells[(model, t.name)] for t in tasks}
    excluded = [t.name for t in tasks if zero_shot_only and row[t.name].zero_shot is False]
    scored = [t for t in _scored_tasks(tasks, cells) if t.name not in excluded]
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
        rank=None, excluded=excluded,
        speed=_speed([c for c in row.values() if c.status == "ok"], perf),
    )


def _speed(cells: list[Cell], perf=None) -> Speed:
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
        latency_1k_ms=perf.evalkit.main_score if perf is not None else None,
    )


def _rank_models(summary: list[ModelSummary]) -> None:
    ranks = _competition_ranks({s.model: s.mean for s in summary if s.mean is not None})
    for s in summary:
        s.rank = ranks.get(s.model)


def _model_entry(row: str, found: Scan, cells: dict) -> ModelEntry:
    model = found.models.get(row)
    meta = (model.meta if model else {}) or {}
    config = (model.config if model else {}) or {}
    cells_of = [c for (m, _), c in cells.items() if m == row]
    return ModelEntry(
        id=row, name=model.name if model else row, variant=model.variant if model else row,
        variant_id=model.variant_id if model else None, revision=model.revision if model else None,
        backend=meta.get("backend") or config.get("backend"),
        model_id=meta.get("model_id") or config.get("model_id") or config.get("model"),
        dimension=meta.get("dim") or config.get("dimension"),
        max_tokens=meta.get("max_tokens") if isinstance(meta.get("max_tokens"), int) else config.get("max_length"),
        pooling=meta.get("pooling") or config.get("pooling"), dtype=meta.get("dtype") or config.get("dtype"),
        parameters=meta.get("parameters"), weight_bytes=meta.get("weight_bytes"),
        config_hashes=sorted({c.config_hash for c in cells_of if c.config_hash}),
        devices=sorted({c.device for c in cells_of if c.device}),
    )


def _provenance(cells: list[Cell], found: Scan, sources: list[Path]) -> Provenance:
    versions: dict[str, set[str]] = {}
    shown = {(c.model, c.task) for c in cells if c.status == "ok"}
    for key, pair in found.pairs.items():
        if key in shown and pair.result is not None:
            for pkg, v in pair.result.evalkit.versions.items():
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
