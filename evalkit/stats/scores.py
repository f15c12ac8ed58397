"""Per-item scores of a subset and the task score they give (mean of per-item values, or
Spearman of predicted vs gold similarities); rank helpers shared by the bootstrap and
the permutation test. Method notes: ``evalkit.stats``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from evalkit.errors import DataError

KINDS = ("mean", "spearman")
DEFAULT_RESAMPLES = 10_000
MIN_ITEMS_FOR_P = 10
# Items x resamples per vectorised call: keeps each array to tens of MB for any task size.
BATCH_ELEMENTS = 2_000_000


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


def corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; NaN where a row is constant."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def rank_keys(x: np.ndarray) -> np.ndarray:
    """2 x (tie-averaged rank) of a 1-D array: integers in [2, 2n] ordered like x."""
    return np.rint(2 * stats.rankdata(x)).astype(np.int64)


def ranks_of_keys(keys: np.ndarray) -> np.ndarray:
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
    return float(corr_rows(stats.rankdata(s.values), stats.rankdata(s.gold)))


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


def resampled_score(s: ItemScores, idx: np.ndarray) -> np.ndarray:
    if s.kind == "mean":
        return s.values[idx].mean(axis=-1)
    # Ranks of a resample of x equal ranks of the same resample of x's rank keys.
    return corr_rows(ranks_of_keys(rank_keys(s.values)[idx]), ranks_of_keys(rank_keys(s.gold)[idx]))
