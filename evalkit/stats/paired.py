"""Model a vs model b on the same items: paired-bootstrap CI of the difference, paired
permutation p-value, win/tie/loss counts, Holm's correction across a table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from evalkit.errors import DataError
from evalkit.stats.bootstrap import stratified_bootstrap
from evalkit.stats.scores import (BATCH_ELEMENTS, DEFAULT_RESAMPLES, MIN_ITEMS_FOR_P, ItemScores, corr_rows,
                                  rank_keys, ranks_of_keys, resampled_score, spearman_contributions, task_score)


@dataclass
class Comparison:
    """Model a vs. model b on one task; ``difference`` and ``ci`` are a - b."""

    task: str
    score_a: float
    score_b: float
    difference: float
    ci: tuple[float, float] | None
    p_value: float | None
    wins: int
    ties: int
    losses: int
    n: int
    note: str = ""


def _align(a: list[ItemScores], b: list[ItemScores], task: str) -> list[tuple[ItemScores, ItemScores]]:
    """Pair subsets by name and b's items to a's order; any mismatch is a DataError."""
    def by_name(side, subsets):
        names = [s.subset for s in subsets]
        if len(set(names)) != len(names):
            raise DataError(f"task {task!r}: model {side} has duplicate subset names {names}")
        return dict(zip(names, subsets))

    da, db = by_name("a", a), by_name("b", b)
    if not da:
        raise DataError(f"task {task!r}: no subsets to compare")
    if set(da) != set(db):
        raise DataError(f"task {task!r}: subsets differ between the models: only in a: "
                        f"{sorted(set(da) - set(db))}, only in b: {sorted(set(db) - set(da))}")
    pairs = []
    for name, sa in da.items():
        sb = db[name]
        where = f"task {task!r} subset {name!r}"
        if sa.kind != sb.kind:
            raise DataError(f"{where}: kind {sa.kind!r} for model a, {sb.kind!r} for model b")
        only_a, only_b = set(sa.ids) - set(sb.ids), set(sb.ids) - set(sa.ids)
        if only_a or only_b:
            example = sorted(only_a or only_b)[0]
            raise DataError(f"{where}: item ids differ between the models: {len(only_a)} only in a, "
                            f"{len(only_b)} only in b (e.g. {example!r}); refusing to compare a subset")
        position = {i: p for p, i in enumerate(sb.ids)}
        order = np.array([position[i] for i in sa.ids])
        gold_b = None if sb.gold is None else sb.gold[order]
        if gold_b is not None and not np.allclose(sa.gold, gold_b, equal_nan=True):
            raise DataError(f"{where}: gold scores differ between the models' records")
        pairs.append((sa, ItemScores(sa.ids, sb.values[order], gold_b, sb.kind, name)))
    return pairs


def _item_differences(sa: ItemScores, sb: ItemScores) -> np.ndarray:
    """Per-item a - b: the value for "mean"; for "spearman" the difference of the
    contributions ``z(rank pred)_i * z(rank gold)_i`` (``spearman_contributions``), whose
    subset mean is exactly the Spearman difference. It equals z_gold_i (z_a_i - z_b_i): a
    wins a pair when it ranks it further towards the pair's side of the gold median
    (higher if the gold score is above average, lower if below) than b does; pairs with
    exactly average gold rank are ties."""
    if sa.kind == "mean":
        return sa.values - sb.values
    return spearman_contributions(sa.values, sa.gold) - spearman_contributions(sb.values, sb.gold)


def _permutation_pvalue(pairs, n_resamples, seed) -> float:
    """Two-sided paired permutation p-value of the task-score difference.

    Each item has an output per model (its value for "mean", its within-subset rank key
    for "spearman"). Items whose two outputs are equal are held fixed, since swapping
    them changes no statistic (the p-value is the same, exact or in distribution, and
    scipy's per-item cost shrinks). The m swappable items are numbered 0..m-1; sample x
    holds j and sample y holds j + m, so a "samples" permutation that swaps x_j and y_j
    swaps the two models' outputs of item j in the lookup ``pool``.
    """
    sizes = [len(sa.ids) for sa, _ in pairs]
    bounds = np.cumsum([0] + sizes)
    out_a, out_b, gold_ranks = [], [], []
    for sa, sb in pairs:
        spearman = sa.kind == "spearman"
        out_a.append(rank_keys(sa.values) if spearman else sa.values)
        out_b.append(rank_keys(sb.values) if spearman else sb.values)
        gold_ranks.append(stats.rankdata(sa.gold) if spearman else None)
    out_a, out_b = np.concatenate(out_a).astype(float), np.concatenate(out_b).astype(float)
    swappable = np.flatnonzero(out_a != out_b)
    m = len(swappable)
    if m <= 1:
        # identical outputs: every swap gives the observed statistic; one differing item: its two
        # arrangements give +d and -d, equally extreme (two-sided p = 1; scipy needs two or more)
        return 1.0
    pool = np.concatenate([out_a[swappable], out_b[swappable]])

    def subset_value(full, k):
        part = full[..., bounds[k]:bounds[k + 1]]
        if gold_ranks[k] is None:
            return part.mean(axis=-1)
        return corr_rows(ranks_of_keys(part.astype(np.int64)), gold_ranks[k])

    def model_outputs(base, x):
        full = np.empty(x.shape[:-1] + base.shape)
        full[...] = base
        full[..., swappable] = pool[x]
        return full

    def statistic(x, y, axis=-1):
        fa, fb = model_outputs(out_a, x), model_outputs(out_b, y)
        return sum(subset_value(fa, k) - subset_value(fb, k) for k in range(len(pairs))) / len(pairs)

    res = stats.permutation_test((np.arange(m), np.arange(m) + m), statistic,
                                 permutation_type="samples", vectorized=True,
                                 n_resamples=n_resamples, batch=max(1, BATCH_ELEMENTS // len(out_a)),
                                 alternative="two-sided", rng=np.random.default_rng(seed))
    return float(res.pvalue)


def paired_comparison(a: list[ItemScores], b: list[ItemScores], *, task: str,
                      confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0, method: str = "percentile") -> Comparison:
    """Compare model a with model b on the same items of one task (a - b).

    The CI resamples the same items for both models (paired, stratified by subset);
    the p-value is a two-sided paired permutation test (None below 10 paired items).
    Wins/ties/losses count items whose per-item difference (see ``_item_differences``)
    is > 0, == 0 (|d| <= 1e-12 for Spearman terms) or < 0.
    """
    pairs = _align(a, b, task)
    score_a, score_b = task_score([p[0] for p in pairs]), task_score([p[1] for p in pairs])
    difference = score_a - score_b
    n = sum(len(sa.ids) for sa, _ in pairs)

    def subset_stat(k, idx):
        sa, sb = pairs[k]
        if sa.kind == "mean":  # mean(a[idx]) - mean(b[idx]) == mean((a - b)[idx])
            return (sa.values - sb.values)[idx].mean(axis=-1)
        return resampled_score(sa, idx) - resampled_score(sb, idx)

    notes = []
    ci = stratified_bootstrap([len(sa.ids) for sa, _ in pairs], subset_stat, difference,
                               confidence, n_resamples, seed, method)
    d = np.concatenate([_item_differences(sa, sb) for sa, sb in pairs])
    tol = np.concatenate([np.full(len(sa.ids), 0.0 if sa.kind == "mean" else 1e-12) for sa, _ in pairs])
    wins, losses = int((d > tol).sum()), int((d < -tol).sum())
    ties = int((np.abs(d) <= tol).sum())
    if ci is None and np.isfinite(difference):
        notes.append("bootstrap CI undefined (a resample had constant predictions or gold)")
    if not np.isfinite(difference):
        notes.append("score undefined (constant predictions or gold in a Spearman subset)")
        p_value = None
    elif n < MIN_ITEMS_FOR_P:
        notes.append(f"only {n} paired items (< {MIN_ITEMS_FOR_P}): no p-value")
        p_value = None
    else:
        p_value = _permutation_pvalue(pairs, n_resamples, seed)
    return Comparison(task, score_a, score_b, difference, ci, p_value, wins, ties, losses, n,
                      "; ".join(notes))


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values in input order; None entries are skipped
    (they neither count towards m nor change) and stay None."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))  # monotone in sorted order
        adjusted[i] = running
    return adjusted
