"""Confidence intervals and paired comparisons of task scores from per-item scores.

A task score is the mean over its subsets of the subset scores (as mteb's
``TaskResult.get_score()`` combines subsets). A subset score is either the mean of
per-item values (kind ``"mean"``: retrieval nDCG per query, accuracy per item, ...) or
the Spearman correlation of predicted similarities with gold scores (kind
``"spearman"``: STS).

Method choices (and why):

* **Stratified bootstrap.** Items are resampled within each subset, each subset
  independently, and the subset statistics are averaged: the CI is that of the mean of
  subset means, the figure the leaderboard shows, not of a pooled mean.
* **Percentile interval, not BCa.** The statistics are means (or Spearman) over
  hundreds to thousands of items, so their bootstrap distributions are close to
  symmetric and BCa's bias/skew correction moves the ends by less than their
  Monte-Carlo error; BCa's jackknife costs one statistic evaluation per item
  (O(n^2) for a retrieval task with 10k queries) and returns NaN on degenerate data;
  and a percentile interval can be re-derived by anyone with a ten-line resampling
  loop (``tests/test_stats.py`` does). ``method="BCa"`` is accepted for small,
  skewed cases.
* **Paired permutation test** swapping the two models' outputs within each item. For
  ``"spearman"`` subsets the swapped quantity is each model's *rank* of the pair
  (Spearman is rank-invariant, so the observed statistic is unchanged) so that models
  with different similarity scales (cosine vs. dot product) stay exchangeable.

Monte-Carlo accuracy with the default ``n_resamples=10_000``: a p-value ``p`` has a
standard error of ``sqrt(p (1 - p) / 10_000)``, 0.0022 at p = 0.05 and 0.001 at
p = 0.01 (scipy adds one to numerator and denominator, so it is never 0; the smallest
is 2/10_001 two-sided). A 95% CI end is a 2.5% quantile of the bootstrap distribution;
its standard error is ``sqrt(0.025 * 0.975 / R) / pdf(z_0.975)``, about 0.027 bootstrap
standard errors at R = 10_000 (1.4% of the half-width). With 13 or fewer paired items
the permutation test enumerates all 2^n swaps and is exact.

Degenerate cases: a bootstrap distribution with no spread (all values equal, every
subset a single item, two identical models) gives the zero-width CI
``(score, score)``; a CI that is undefined (a Spearman subset with constant
predictions or gold, in the data or in resamples) is ``None``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evalkit.errors import DataError

KINDS = ("mean", "spearman")
DEFAULT_RESAMPLES = 10_000
MIN_ITEMS_FOR_P = 10
# Items x resamples per vectorised call: keeps each array to tens of MB for any task size.
_BATCH_ELEMENTS = 2_000_000


@dataclass
class ItemScores:
    """Per-item scores of one subset of one task for one model."""

    ids: list[str]
    values: np.ndarray
    gold: np.ndarray | None = None
    kind: str = "mean"
    subset: str = "default"

    def __post_init__(self):
        self.ids = [str(i) for i in self.ids]
        self.values = np.asarray(self.values, dtype=float)
        where = f"subset {self.subset!r}"
        if self.kind not in KINDS:
            raise DataError(f"{where}: unknown kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        if self.values.ndim != 1 or len(self.values) != len(self.ids):
            raise DataError(f"{where}: values must be 1-D with one value per id "
                            f"({len(self.ids)} ids, values of shape {self.values.shape})")
        if len(self.ids) == 0:
            raise DataError(f"{where}: no items")
        if not np.isfinite(self.values).all():
            raise DataError(f"{where}: {int((~np.isfinite(self.values)).sum())} non-finite values "
                            f"(e.g. item {self.ids[int(np.argmin(np.isfinite(self.values)))]!r})")
        if len(set(self.ids)) != len(self.ids):
            raise DataError(f"{where}: {len(self.ids) - len(set(self.ids))} duplicate item ids")
        if self.kind == "spearman":
            if self.gold is None:
                raise DataError(f"{where}: kind 'spearman' needs gold scores")
            self.gold = np.asarray(self.gold, dtype=float)
            if self.gold.shape != self.values.shape or not np.isfinite(self.gold).all():
                raise DataError(f"{where}: gold must be finite with the shape of values "
                                f"(gold {self.gold.shape}, values {self.values.shape})")
        elif self.gold is not None:
            raise DataError(f"{where}: gold is only used by kind 'spearman', not {self.kind!r}")


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


def _corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; NaN where a row is constant."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def _rank_keys(x: np.ndarray) -> np.ndarray:
    """2 x (tie-averaged rank) of a 1-D array: integers in [2, 2n] ordered like x."""
    return np.rint(2 * stats.rankdata(x)).astype(np.int64)


def _ranks_of_keys(keys: np.ndarray) -> np.ndarray:
    """Tie-averaged ranks along the last axis of integer keys in [0, 2n] (counting sort).

    Equals ``stats.rankdata(keys, axis=-1)`` but costs O(n) per row instead of a sort,
    which makes Spearman resamples about as cheap as means.
    """
    rows = keys.reshape(-1, keys.shape[-1])
    n_keys = 2 * keys.shape[-1] + 1
    flat = rows + (np.arange(len(rows)) * n_keys)[:, None]
    counts = np.bincount(flat.ravel(), minlength=len(rows) * n_keys).reshape(len(rows), n_keys)
    smaller = np.cumsum(counts, axis=1) - counts
    average = smaller + (counts + 1) / 2
    return average.ravel()[flat].reshape(keys.shape)


def _subset_score(s: ItemScores) -> float:
    if s.kind == "mean":
        return float(s.values.mean())
    return float(_corr_rows(stats.rankdata(s.values), stats.rankdata(s.gold)))


def task_score(subsets: list[ItemScores]) -> float:
    """Mean over subsets of the subset scores (NaN if a Spearman subset is undefined)."""
    if not subsets:
        raise DataError("task_score: no subsets")
    return float(np.mean([_subset_score(s) for s in subsets]))


def spearman_contributions(pred, gold) -> np.ndarray:
    """Per-item terms ``z(rank pred)_i * z(rank gold)_i`` whose mean is Spearman exactly.

    Ranks average ties as scipy does; z uses the population standard deviation. A
    constant ``pred`` or ``gold`` gives NaN terms (Spearman is undefined).
    """
    def z(x):
        r = stats.rankdata(np.asarray(x, dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (r - r.mean()) / r.std()

    return z(pred) * z(gold)


def _stratified_bootstrap(sizes, subset_stat, point, confidence, n_resamples, seed, method):
    """Percentile/BCa CI of ``mean_k subset_stat(k, idx_k)`` resampling items per subset.

    ``subset_stat(k, idx)`` maps index arrays (..., n_k) of subset k to (...).
    """
    if not np.isfinite(point):
        return None
    # scipy needs two or more observations per sample; one-item subsets never vary.
    varying = [k for k, n in enumerate(sizes) if n > 1]
    fixed = sum(subset_stat(k, np.arange(1)) for k, n in enumerate(sizes) if n == 1)
    if not varying:
        return (point, point)

    def statistic(*idx, axis=-1):
        total = fixed
        for k, i in zip(varying, idx):
            total = total + subset_stat(k, i)
        return total / len(sizes)

    # Batch depends only on the data sizes, so the result is reproducible for a seed.
    batch = max(1, _BATCH_ELEMENTS // sum(sizes[k] for k in varying))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate distributions are handled below
        res = stats.bootstrap(tuple(np.arange(sizes[k]) for k in varying), statistic,
                              vectorized=True, n_resamples=n_resamples, batch=batch,
                              confidence_level=confidence, method=method,
                              rng=np.random.default_rng(seed))
    dist = res.bootstrap_distribution
    if np.isnan(dist).any():
        return None
    if np.ptp(dist) <= 1e-12 * max(1.0, abs(point)):
        return (point, point)
    low, high = res.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return (float(low), float(high))


def _resampled_score(s: ItemScores, idx: np.ndarray) -> np.ndarray:
    if s.kind == "mean":
        return s.values[idx].mean(axis=-1)
    # Ranks of a resample of x equal ranks of the same resample of x's rank keys.
    return _corr_rows(_ranks_of_keys(_rank_keys(s.values)[idx]), _ranks_of_keys(_rank_keys(s.gold)[idx]))


def bootstrap_ci(subsets: list[ItemScores], confidence: float = 0.95,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 method: str = "percentile") -> tuple[float, float] | None:
    """Stratified bootstrap CI of ``task_score(subsets)``; see the module docstring.

    Returns ``(low, high)``, ``(score, score)`` when the bootstrap distribution has no
    spread, or ``None`` when it is undefined (NaN Spearman).
    """
    point = task_score(subsets)
    return _stratified_bootstrap([len(s.ids) for s in subsets],
                                 lambda k, idx: _resampled_score(subsets[k], idx),
                                 point, confidence, n_resamples, seed, method)


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
        out_a.append(_rank_keys(sa.values) if spearman else sa.values)
        out_b.append(_rank_keys(sb.values) if spearman else sb.values)
        gold_ranks.append(stats.rankdata(sa.gold) if spearman else None)
    out_a, out_b = np.concatenate(out_a).astype(float), np.concatenate(out_b).astype(float)
    swappable = np.flatnonzero(out_a != out_b)
    m = len(swappable)
    if m == 0:
        return 1.0  # identical outputs: every swap gives the observed statistic
    pool = np.concatenate([out_a[swappable], out_b[swappable]])

    def subset_value(full, k):
        part = full[..., bounds[k]:bounds[k + 1]]
        if gold_ranks[k] is None:
            return part.mean(axis=-1)
        return _corr_rows(_ranks_of_keys(part.astype(np.int64)), gold_ranks[k])

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
                                 n_resamples=n_resamples, batch=max(1, _BATCH_ELEMENTS // len(out_a)),
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
        return _resampled_score(sa, idx) - _resampled_score(sb, idx)

    notes = []
    ci = _stratified_bootstrap([len(sa.ids) for sa, _ in pairs], subset_stat, difference,
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
