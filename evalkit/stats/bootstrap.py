"""Stratified bootstrap confidence intervals of a task score (items resampled within each
subset); why percentile and not BCa: ``evalkit.stats``."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from evalkit.stats.scores import BATCH_ELEMENTS, DEFAULT_RESAMPLES, ItemScores, resampled_score, task_score


def stratified_bootstrap(sizes, subset_stat, point, confidence, n_resamples, seed, method):
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
    batch = max(1, BATCH_ELEMENTS // sum(sizes[k] for k in varying))
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


def bootstrap_ci(subsets: list[ItemScores], confidence: float = 0.95,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 method: str = "percentile") -> tuple[float, float] | None:
    """Stratified bootstrap CI of ``task_score(subsets)``; see the module docstring.

    Returns ``(low, high)``, ``(score, score)`` when the bootstrap distribution has no
    spread, or ``None`` when it is undefined (NaN Spearman).
    """
    point = task_score(subsets)
    return stratified_bootstrap([len(s.ids) for s in subsets],
                                 lambda k, idx: resampled_score(subsets[k], idx),
                                 point, confidence, n_resamples, seed, method)
