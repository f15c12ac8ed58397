"""Uncertainty in every cell and paired significance between models, from per-item scores.

For each ok cell: a 95% bootstrap interval of its main score (``evalkit.stats``; items
resampled within each subset). For each task, every pair of models — or every model against
``--baseline`` — on the same data: the paired difference, its paired-bootstrap interval, a
paired permutation p-value, Holm's correction across the comparisons of that task, and
win / tie / loss counts. Never invented: a cell without per-item scores (an older evalkit,
mteb's own results) gets "not available"; different data fingerprints are not compared; a
mismatch of item sets is an error naming the task.
"""

from __future__ import annotations

import logging
from itertools import combinations

from evalkit.errors import DataError
from evalkit.leaderboard.scan import Scan
from evalkit.leaderboard.schema import Cell, Comparison, TaskEntry
from evalkit.results import ResultStore

log = logging.getLogger("evalkit.leaderboard")

CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0
NO_ITEMS = "not available: no per-item scores beside the result (from an older evalkit or from mteb itself)"


def _items(found: Scan, key):
    pair = found.pairs.get(key)
    if pair is None or pair.result is None or pair.result_file is None:
        return None
    return ResultStore(pair.result_file.parent).load_items(pair.result_file)


def add_uncertainty(found: Scan, cells: dict, tasks: list[TaskEntry], rows: list[str], baseline: str | None,
                    warnings: list[str]) -> list[Comparison]:
    from evalkit import stats

    if baseline is not None and baseline not in rows:
        matches = [r for r in rows if r == baseline or r.split(" · ")[0] == baseline]
        if len(matches) != 1:
            raise ValueError(f"--baseline {baseline!r} is not one of the models: {', '.join(rows)}")
        baseline = matches[0]
    items = {}
    for (row, task), cell in cells.items():
        if cell.status != "ok":
            continue
        got = _items(found, (row, task))
        if got is None:
            cell.ci_note = NO_ITEMS
            continue
        subsets = got.stat_subsets()
        items[(row, task)] = subsets
        cell.n_items = sum(len(s.ids) for s in subsets)
        try:
            ci = stats.bootstrap_ci(subsets, confidence=CONFIDENCE, seed=SEED)
        except (ValueError, DataError) as exc:
            cell.ci_note = f"no interval: {exc}"
            continue
        if ci is None:
            cell.ci_note = "no interval: the score is undefined on some resamples (constant predictions)"
        else:
            cell.ci_low, cell.ci_high = ci
    out: list[Comparison] = []
    for t in tasks:
        out += _task_comparisons(t, cells, items, rows, baseline, warnings)
    return out


def _pairs(task: str, rows: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is not None:
        return [(r, baseline) for r in rows if r != baseline]
    return list(combinations(rows, 2))


def _task_comparisons(task: TaskEntry, cells: dict, items: dict, rows: list[str], baseline: str | None,
                      warnings: list[str]) -> list[Comparison]:
    from evalkit import stats

    comps: list[Comparison] = []
    for a, b in _pairs(task.name, rows, baseline):
        ca, cb = cells.get((a, task.name)), cells.get((b, task.name))
        if ca is None or cb is None or ca.status != "ok" or cb.status != "ok":
            continue
        base = dict(task=task.name, model_a=a, model_b=b, diff=None, ci_low=None, p_value=None, p_holm=None,
                    significant=None, wins=None, losses=None, n=None)
        if ca.fingerprint != cb.fingerprint:
            comps.append(Comparison(**base, note="not compared: the two results come from different task data "
                                                 f"(fingerprints {ca.fingerprint} vs {cb.fingerprint})"))
            continue
        if (a, task.name) not in items or (b, task.name) not in items:
            comps.append(Comparison(**base, note=NO_ITEMS))
            continue
        try:
            c = stats.paired_comparison(items[(a, task.name)], items[(b, task.name)], task=task.name,
                                        confidence=CONFIDENCE, seed=SEED)
        except (ValueError, DataError) as exc:
            raise DataError(f"leaderboard: cannot pair {a} with {b}: {exc}") from None
        low, high = c.ci if c.ci is not None else (None, None)
        comps.append(Comparison(**(base | dict(diff=c.difference, ci_low=low, p_value=c.p_value, wins=c.wins,
                                               losses=c.losses, n=c.n)),
                                ci_high=high, ties=c.ties, note=c.note or None))
    adjusted = stats.holm([c.p_value for c in comps])
    for c, p in zip(comps, adjusted):
        c.p_holm = p
        c.significant = None if p is None else bool(p < ALPHA)
    return comps


def significance_marker(comp: Comparison | None) -> str:
    """'' (no test), '*' (better, significant), '†' (worse, significant), '=' (not significant)."""
    if comp is None or comp.significant is None:
        return ""
    if not comp.significant:
        return "="
    return "*" if (comp.diff or 0) > 0 else "†"


def half_width(cell: Cell) -> float | None:
    if cell.ci_low is None or cell.ci_high is None:
        return None
    return (cell.ci_high - cell.ci_low) / 2
