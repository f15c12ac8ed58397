"""evalkit.stats against independent numpy/scipy computations.

Monte-Carlo comparisons use tolerances derived from the number of resamples R:
a bootstrap CI end is a q-quantile of R draws, so two independent estimates lie within
``4 * sqrt(2 q (1 - q) / R)`` of each other in probability units (order statistics,
no distribution assumed); two p-value estimates differ by at most
``4 * sqrt(2) * SE`` with ``SE = 2 sqrt(p/2 (1 - p/2) / R)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from evalkit import stats
from evalkit.errors import DataError
from evalkit.stats import ItemScores, bootstrap_ci, holm, paired_comparison, spearman_contributions, task_score

R = 4000  # resamples for the Monte-Carlo comparisons (keeps the file fast)


def ids(n, prefix="q"):
    return [f"{prefix}{i}" for i in range(n)]


def quantile_band(dist, q, r_module):
    """Range of q-quantiles of ``dist`` within 4 Monte-Carlo SEs of an independent estimate."""
    r = len(dist)
    half = 4 * np.sqrt(q * (1 - q) * (1 / r + 1 / r_module))
    return np.quantile(dist, max(q - half, 0)), np.quantile(dist, min(q + half, 1))


def assert_ci_matches(ci, dist, confidence=0.95, r_module=R):
    alpha = (1 - confidence) / 2
    for end, q in zip(ci, (alpha, 1 - alpha)):
        lo, hi = quantile_band(dist, q, r_module)
        assert lo <= end <= hi, (end, q, lo, hi)


def stratified_numpy_bootstrap(subset_stats, sizes, r, seed):
    """Reference loop: resample items per subset, average the subset statistics."""
    rng = np.random.default_rng(seed)
    out = np.empty(r)
    for b in range(r):
        out[b] = np.mean([f(rng.integers(0, n, n)) for f, n in zip(subset_stats, sizes)])
    return out


def spearman_ref(x, y):
    return sps.spearmanr(x, y).statistic


def test_task_score_is_mean_of_subset_scores():
    rng = np.random.default_rng(0)
    v1, v2 = rng.uniform(size=7), rng.uniform(size=30)
    pred, gold = rng.normal(size=25), rng.integers(0, 5, 25)
    subsets = [ItemScores(ids(7), v1, subset="s1"), ItemScores(ids(30), v2, subset="s2"),
               ItemScores(ids(25), pred, gold, "spearman", subset="sts")]
    expected = np.mean([v1.mean(), v2.mean(), spearman_ref(pred, gold)])
    assert task_score(subsets) == pytest.approx(expected, abs=1e-12)


def test_spearman_contributions_mean_equals_scipy_with_ties():
    rng = np.random.default_rng(1)
    pred = np.round(rng.normal(size=40), 1)  # ties in predictions
    gold = rng.integers(0, 6, 40)            # heavy ties in gold, as in STS
    c = spearman_contributions(pred, gold)
    assert c.mean() == pytest.approx(spearman_ref(pred, gold), abs=1e-12)


def test_counting_ranks_equal_scipy_rankdata():
    keys = np.random.default_rng(2).integers(0, 21, (50, 10))
    assert np.array_equal(stats.ranks_of_keys(keys), sps.rankdata(keys, axis=-1))


def test_bootstrap_ci_matches_numpy_resampling():
    values = np.random.default_rng(3).beta(2, 5, 150)
    ci = bootstrap_ci([ItemScores(ids(150), values)], n_resamples=R, seed=1)
    dist = stratified_numpy_bootstrap([lambda i: values[i].mean()], [150], R, seed=99)
    assert_ci_matches(ci, dist)


def test_stratified_bootstrap_is_ci_of_mean_of_subset_means_not_pooled_mean():
    rng = np.random.default_rng(4)
    small, large = rng.normal(0.2, 0.15, 20), rng.normal(0.8, 0.05, 2000)
    subsets = [ItemScores(ids(20), small, subset="small"), ItemScores(ids(2000), large, subset="large")]
    low, high = bootstrap_ci(subsets, n_resamples=R, seed=0)
    mean_of_means, pooled = (small.mean() + large.mean()) / 2, np.concatenate([small, large]).mean()
    assert low < mean_of_means < high and not low < pooled < high
    # Width: bootstrap SE of the mean of two subset means (population variances).
    se = 0.5 * np.sqrt(small.var() / 20 + large.var() / 2000)
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    dist = stratified_numpy_bootstrap([lambda i: small[i].mean(), lambda i: large[i].mean()],
                                      [20, 2000], R, seed=7)
    assert_ci_matches((low, high), dist)


def test_spearman_ci_matches_numpy_resampling_of_pairs():
    rng = np.random.default_rng(5)
    gold = rng.integers(0, 6, 80).astype(float)
    pred = gold + rng.normal(0, 2, 80)
    ci = bootstrap_ci([ItemScores(ids(80), pred, gold, "spearman")], n_resamples=R, seed=3)
    idx = np.random.default_rng(11).integers(0, 80, (R, 80))  # pairs stay together
    rp, rg = sps.rankdata(pred[idx], axis=1), sps.rankdata(gold[idx], axis=1)
    dist = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(rp, rg)])
    assert_ci_matches(ci, dist)


def test_spearman_resample_statistic_recomputes_ranks_like_scipy():
    # Deterministic check of the statistic the bootstrap evaluates on each resample.
    rng = np.random.default_rng(16)
    gold, pred = rng.integers(0, 4, 30).astype(float), rng.normal(size=30)
    idx = rng.integers(0, 30, (20, 30))
    got = stats.resampled_score(ItemScores(ids(30), pred, gold, "spearman"), idx)
    assert got == pytest.approx([spearman_ref(pred[i], gold[i]) for i in idx], abs=1e-12)


def test_ci_coverage_on_synthetic_data():
    # 200 seeded samples of Beta(2, 5) (true mean 2/7): ~95% of the CIs must cover it.
    true_mean, draws = 2 / 7, 200
    rng = np.random.default_rng(6)
    covered = 0
    for k in range(draws):
        x = rng.beta(2, 5, 200)
        low, high = bootstrap_ci([ItemScores(ids(200), x)], n_resamples=1000, seed=k)
        covered += low <= true_mean <= high
    sd = np.sqrt(0.95 * 0.05 / draws)
    assert abs(covered / draws - 0.95) <= 3 * sd, covered


def test_paired_ci_resamples_same_items_for_both_models():
    rng = np.random.default_rng(7)
    base = rng.uniform(size=300)  # shared item difficulty: pairing shrinks the CI
    a, b = base + rng.normal(0.02, 0.05, 300), base + rng.normal(0, 0.05, 300)
    cmp = paired_comparison([ItemScores(ids(300), a)], [ItemScores(ids(300), b)], task="T",
                            n_resamples=R, seed=2)
    assert cmp.difference == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    dist = stratified_numpy_bootstrap([lambda i: a[i].mean() - b[i].mean()], [300], R, seed=5)
    assert_ci_matches(cmp.ci, dist)
    unpaired_half = 1.96 * np.sqrt(a.var() / 300 + b.var() / 300)
    assert cmp.ci[1] - cmp.ci[0] < unpaired_half  # far below the unpaired width (2x this)


def sign_flip_statistic(d_subsets, signs_subsets):
    return np.mean([np.mean(s * d, axis=-1) for d, s in zip(d_subsets, signs_subsets)], axis=0)


def two_sided_p(null, observed, adjustment):
    gamma = abs(observed) * np.finfo(float).eps * 100  # scipy's tolerance for equal values
    less = ((null <= observed + gamma).sum() + adjustment) / (len(null) + adjustment)
    greater = ((null >= observed - gamma).sum() + adjustment) / (len(null) + adjustment)
    return min(1.0, 2 * min(less, greater))


def test_permutation_pvalue_matches_numpy_sign_flips():
    rng = np.random.default_rng(8)
    a = rng.uniform(size=60)
    b = a - rng.normal(0.02, 0.1, 60)
    cmp = paired_comparison([ItemScores(ids(60), a)], [ItemScores(ids(60), b)], task="T",
                            n_resamples=R, seed=4)
    d = a - b
    signs = np.random.default_rng(13).choice([-1.0, 1.0], size=(R, 60))
    p_ref = two_sided_p(signs @ d / 60, d.mean(), adjustment=1)
    se = 2 * np.sqrt(p_ref / 2 * (1 - p_ref / 2) / R)
    assert 0.01 < p_ref < 0.9  # an informative regime, not a trivially 0 or 1 p-value
    assert cmp.p_value == pytest.approx(p_ref, abs=4 * np.sqrt(2) * se)


def test_permutation_pvalue_exact_for_small_n_two_subsets_and_a_tie():
    rng = np.random.default_rng(9)
    a1, a2 = rng.uniform(size=5), rng.uniform(size=7)
    b1, b2 = a1 - rng.normal(0.1, 0.2, 5), a2 - rng.normal(0.1, 0.2, 7)
    b2[3] = a2[3]  # a tie: swapping it must change nothing
    cmp = paired_comparison([ItemScores(ids(5), a1, subset="x"), ItemScores(ids(7), a2, subset="y")],
                            [ItemScores(ids(5), b1, subset="x"), ItemScores(ids(7), b2, subset="y")],
                            task="T", n_resamples=10_000)
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=12)))  # all 2^12 swaps
    null = sign_flip_statistic([a1 - b1, a2 - b2], [signs[:, :5], signs[:, 5:]])
    observed = ((a1 - b1).mean() + (a2 - b2).mean()) / 2
    assert cmp.p_value == pytest.approx(two_sided_p(null, observed, adjustment=0), abs=1e-12)
    assert (cmp.wins, cmp.ties, cmp.losses, cmp.n) == (
        int((np.r_[a1 - b1, a2 - b2] > 0).sum()), 1, int((np.r_[a1 - b1, a2 - b2] < 0).sum()), 12)


def test_one_differing_item_among_many_gives_the_exact_p_of_its_two_arrangements():
    # float16 vectors against float32 on a full task: one query of 1,195 moved (a deploy_compare run)
    rng = np.random.default_rng(10)
    a = rng.uniform(size=40)
    b = a.copy()
    b[17] -= 0.3
    cmp = paired_comparison([ItemScores(ids(40), a)], [ItemScores(ids(40), b)], task="T")
    null = sign_flip_statistic([a - b], [np.array([[1.0] * 40, [1.0] * 17 + [-1.0] + [1.0] * 22])])
    assert cmp.p_value == pytest.approx(two_sided_p(null, (a - b).mean(), adjustment=0)) == 1.0
    assert (cmp.wins, cmp.ties, cmp.losses) == (1, 39, 0)


def test_spearman_permutation_exact_swaps_ranks_within_pairs():
    rng = np.random.default_rng(10)
    gold = rng.integers(0, 5, 11).astype(float)
    pa, pb = gold + rng.normal(0, 1, 11), 3 * (gold + rng.normal(0, 2, 11)) + 10  # other scale
    cmp = paired_comparison([ItemScores(ids(11), pa, gold, "spearman")],
                            [ItemScores(ids(11), pb, gold, "spearman")], task="STS", n_resamples=10_000)
    ra, rb = sps.rankdata(pa), sps.rankdata(pb)
    null = []
    for mask in itertools.product([False, True], repeat=11):
        mask = np.array(mask)
        null.append(spearman_ref(np.where(mask, rb, ra), gold) - spearman_ref(np.where(mask, ra, rb), gold))
    observed = spearman_ref(pa, gold) - spearman_ref(pb, gold)
    assert cmp.difference == pytest.approx(observed, abs=1e-12)
    assert cmp.p_value == pytest.approx(two_sided_p(np.array(null), observed, adjustment=0), abs=1e-12)


def test_spearman_wins_are_contribution_differences_that_sum_to_the_difference():
    rng = np.random.default_rng(11)
    gold = rng.uniform(0, 5, 60)
    pa, pb = gold + rng.normal(0, 1, 60), gold + rng.normal(0, 2, 60)
    cmp = paired_comparison([ItemScores(ids(60), pa, gold, "spearman")],
                            [ItemScores(ids(60), pb, gold, "spearman")], task="STS", n_resamples=500)
    z = lambda x: (sps.rankdata(x) - sps.rankdata(x).mean()) / sps.rankdata(x).std()  # noqa: E731
    d = z(pa) * z(gold) - z(pb) * z(gold)
    assert d.mean() == pytest.approx(cmp.difference, abs=1e-12)
    tie = np.abs(d) <= 1e-12  # documented: equal contributions up to rounding are ties
    assert (pa == pb).sum() == 0 and tie.sum() == 1  # one pair ranked alike by both models
    assert (cmp.wins, cmp.losses, cmp.ties) == (int((d > 1e-12).sum()), int((d < -1e-12).sum()), 1)


def test_holm_hand_computed_example():
    # m = 4 non-None: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([None]) == [None] and holm([]) == []


def holm_rejects(pvalues, alpha):
    """Holm's step-down procedure: indices rejected at family-wise level alpha."""
    order, m, rejected = np.argsort(pvalues), len(pvalues), set()
    for k, i in enumerate(order):
        if pvalues[i] > alpha / (m - k):
            break
        rejected.add(int(i))
    return rejected


def test_holm_adjusted_p_is_smallest_level_rejecting_the_hypothesis():
    p = list(np.random.default_rng(12).uniform(0, 0.1, 15))
    adjusted = holm(p)
    for i, adj in enumerate(adjusted):
        if adj < 1:
            assert i in holm_rejects(p, adj * (1 + 1e-9))
        assert i not in holm_rejects(p, adj * (1 - 1e-9))


def test_holm_against_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(13).uniform(0, 0.2, 20)
    assert holm(list(p)) == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


def test_id_mismatch_raises_naming_task_subset_and_counts():
    a = [ItemScores(ids(20), np.ones(20), subset="en")]
    b = [ItemScores(ids(18) + ["x1", "x2"], np.ones(20), subset="en")]
    with pytest.raises(DataError, match=r"task 'NFCorpus' subset 'en'.*2 only in a, 2 only in b"):
        paired_comparison(a, b, task="NFCorpus")
    with pytest.raises(DataError, match=r"task 'NFCorpus'.*only in a: \['en'\]"):
        paired_comparison(a, [ItemScores(ids(20), np.ones(20), subset="de")], task="NFCorpus")


def test_item_order_does_not_matter():
    rng = np.random.default_rng(14)
    a, b = rng.uniform(size=30), rng.uniform(size=30)
    perm = rng.permutation(30)
    ordered = paired_comparison([ItemScores(ids(30), a)], [ItemScores(ids(30), b)], task="T", n_resamples=500)
    shuffled = paired_comparison([ItemScores(ids(30), a)],
                                 [ItemScores([ids(30)[i] for i in perm], b[perm])], task="T", n_resamples=500)
    assert shuffled == ordered


def test_fewer_than_ten_pairs_gives_no_pvalue():
    a, b = [ItemScores(ids(9), np.arange(9.0))], [ItemScores(ids(9), np.arange(9.0) - 1)]
    cmp = paired_comparison(a, b, task="T")
    assert cmp.p_value is None and "9 paired items" in cmp.note and cmp.n == 9 and cmp.wins == 9


def test_same_seed_same_output_and_seed_matters():
    rng = np.random.default_rng(15)
    a, b = [ItemScores(ids(50), rng.uniform(size=50))], [ItemScores(ids(50), rng.uniform(size=50))]
    first = paired_comparison(a, b, task="T", n_resamples=1000, seed=3)
    assert paired_comparison(a, b, task="T", n_resamples=1000, seed=3) == first
    assert bootstrap_ci(a, n_resamples=1000, seed=3) == bootstrap_ci(a, n_resamples=1000, seed=3)
    assert bootstrap_ci(a, n_resamples=1000, seed=4) != bootstrap_ci(a, n_resamples=1000, seed=3)


def test_degenerate_cases():
    assert bootstrap_ci([ItemScores(ids(5), np.full(5, 0.3))]) == (0.3, 0.3)
    assert bootstrap_ci([ItemScores(ids(1), [0.7])]) == (0.7, 0.7)
    # A one-item subset is fixed; the other subset still varies.
    low, high = bootstrap_ci([ItemScores(ids(1), [0.7], subset="one"),
                              ItemScores(ids(40), np.linspace(0, 1, 40), subset="many")], n_resamples=500)
    assert low < (0.7 + 0.5) / 2 < high
    assert bootstrap_ci([ItemScores(ids(10), np.ones(10), np.arange(10.0), "spearman")]) is None
    same = [ItemScores(ids(12), np.linspace(0, 1, 12))]
    cmp = paired_comparison(same, same, task="T")
    assert (cmp.difference, cmp.ci, cmp.p_value, cmp.ties) == (0.0, (0.0, 0.0), 1.0, 12)
    assert bootstrap_ci(same, method="BCa", n_resamples=500) is not None


def test_item_scores_validation():
    with pytest.raises(DataError, match="needs gold"):
        ItemScores(ids(3), np.ones(3), kind="spearman")
    with pytest.raises(DataError, match="unknown kind 'ndcg'.*mean, spearman"):
        ItemScores(ids(3), np.ones(3), kind="ndcg")
    with pytest.raises(DataError, match="1 non-finite values.*'q1'"):
        ItemScores(ids(3), [0.1, np.nan, 0.2])
    with pytest.raises(DataError, match="duplicate"):
        ItemScores(["a", "a"], [0.1, 0.2])
