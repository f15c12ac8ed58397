"""Long-context quality: quality by document length adds up to the task score, the effective
length rule, and MiniLM on zh_passkey — truncation loses the passkey, chunking finds it."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.results import ResultStore
from evalkit.runner import run
from evalkit.tasks.by_length import BUCKETS, effective_length
from tests.helpers import make_job, minilm_cfg


@pytest.fixture(scope="module")
def longdoc(tmp_path_factory, data_cache):
    tmp = tmp_path_factory.mktemp("by_length")
    (rec,) = run(make_job(tmp, ["zh_longdoc"], limit=12, cache_dir=data_cache))
    assert rec.status == "ok", rec.error
    return tmp, rec


def test_by_length_buckets_sum_to_the_queries_and_average_to_the_task_score(longdoc):
    tmp, rec = longdoc
    extra = rec.result.evalkit.extra
    buckets = extra["by_length"]["buckets"]
    items = ResultStore(tmp).load_items(rec.path)
    assert sum(b["queries"] for b in buckets) == items.n_items() == 48  # 12 queries x 4 subsets
    assert sum(b["weight"] for b in buckets) == pytest.approx(1.0)
    weighted = sum(b["weight"] * b["score"] for b in buckets if b["queries"])
    # mteb rounds retrieval scores to 5 digits; the buckets' weighted mean is exact
    assert weighted == pytest.approx(rec.main_score, abs=5e-6 + 1e-12)
    assert [b["bucket"] for b in buckets] == [label for *_, label in BUCKETS]


def test_document_lengths_are_in_the_models_own_tokens(longdoc, data_cache):
    from transformers import AutoTokenizer

    from evalkit.schema import PathsConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex
    from tests.helpers import minilm_path, raw_data_dir

    _, rec = longdoc
    lengths = rec.result.evalkit.extra["doc_lengths"]
    assert lengths["tokenizer"] == "the model's own"
    task = TaskIndex().load("zh_longdoc", TaskConfig(names=["zh_longdoc"], limit=12),
                            PathsConfig(raw_data=str(raw_data_dir()), cache_dir=str(data_cache)))
    tok = AutoTokenizer.from_pretrained(minilm_path())  # an independent count, special tokens included
    for subset, summary in lengths["subsets"].items():
        texts = task.mteb_task.dataset[subset]["test"]["corpus"]["text"]
        n = np.array([len(ids) for ids in tok(list(texts), truncation=False)["input_ids"]])
        assert (summary["documents"], summary["max"], summary["median"]) == (len(n), n.max(), int(np.median(n)))
        assert summary["over_max_tokens"] == int((n > 256).sum()) and summary["max_tokens"] == 256


def test_effective_length_rule_by_an_independent_computation():
    rng = np.random.default_rng(7)
    for _ in range(200):
        lengths = [256 * 2**i for i in range(8)]
        scores = dict(zip(lengths, rng.uniform(0, 1, 8)))
        base = scores[256]
        expected = max(n for n in lengths if scores[n] / base >= 0.9)
        assert effective_length(scores) == expected
    # LongEmbed's published passkey curve of jina-embeddings-v2-base-en (nDCG@1, 256 … 32k)
    jina = dict(zip([256 * 2**i for i in range(8)], [1.0, .68, .56, .14, .54, .58, .34, .18]))
    assert effective_length(jina) == 256
    qwen = dict(zip([256 * 2**i for i in range(8)], [1.0, 1.0, 1.0, .98, 1.0, 1.0, .54, .26]))
    assert effective_length(qwen) == 8192


# MiniLM reads the passkey sentence alone at ~0.9 accuracy@1, but Chinese statute text around it
# soon drowns its pinyin name: the default windows (128 tokens, overlap 64, so the ~55-token
# sentence always lies whole inside one) keep it legible; MaxP scores a document by its best
# window. The defaults must never do worse than truncation (docs/long_context.md).
CHUNK = {"long_docs": "chunk"}


@pytest.fixture(scope="module")
def passkey_runs(tmp_path_factory, data_cache):
    tmp = tmp_path_factory.mktemp("passkey")
    out = {}
    for mode, encode in (("truncate", {"long_docs": "truncate"}), ("chunk", CHUNK)):
        (rec,) = run(make_job(tmp, ["zh_passkey"], model=minilm_cfg(), limit=8, subsets=["256", "1024"],
                              cache_dir=data_cache, encode=encode))
        assert rec.status == "ok", rec.error
        out[mode] = rec
    return out


@pytest.mark.slow  # ~2,500 windows of 128 tokens on 2 CPU cores
def test_minilm_loses_the_passkey_when_truncating_and_finds_it_when_chunking(passkey_runs):
    by = {m: {sub: s for _, sub, _, s in r.result.subset_scores()} for m, r in passkey_runs.items()}
    # 1,024 reference tokens are ~1,650 MiniLM tokens: truncation keeps the first 256 of them,
    # so the passkey (at a random depth) is rarely seen -- towards chance (1 of 80)
    assert by["truncate"]["1024"] <= 0.15
    # chunking with the default windows: never worse than truncation, and past the model's
    # window it finds passkeys that truncation cannot see
    assert all(by["chunk"][n] >= by["truncate"][n] for n in ("256", "1024"))
    assert by["chunk"]["1024"] >= by["truncate"]["1024"] + 0.125 and by["chunk"]["256"] > 0
    for rec in passkey_runs.values():  # the rule, applied to the run's own curve
        curve = {int(k): v for k, v in rec.result.evalkit.extra["effective_length"]["curve"].items()}
        assert rec.result.evalkit.extra["effective_length"]["tokens"] == effective_length(curve)
    assert passkey_runs["truncate"].path != passkey_runs["chunk"].path  # two variants, two files
    lengths = passkey_runs["truncate"].result.evalkit.extra["doc_lengths"]["subsets"]["1024"]
    assert lengths["over_max_tokens"] == lengths["documents"] == 80  # every document truncated, and counted
