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

from evalkit.stats.bootstrap import bootstrap_ci
from evalkit.stats.paired import Comparison, holm, paired_comparison
from evalkit.stats.scores import (DEFAULT_RESAMPLES, KINDS, MIN_ITEMS_FOR_P, ItemScores, ranks_of_keys,
                                  resampled_score, spearman_contributions, task_score)

__all__ = ["DEFAULT_RESAMPLES", "KINDS", "MIN_ITEMS_FOR_P", "Comparison", "ItemScores", "bootstrap_ci", "holm",
           "paired_comparison", "ranks_of_keys", "resampled_score", "spearman_contributions", "task_score"]
