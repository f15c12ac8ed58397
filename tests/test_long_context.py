"""Long-context quality: quality by document length adds up to the task score, the effective
length rule, and MiniLM on zh_passkey — truncation loses the passkey, chunking finds it."""

from __future__ import annotations

import json

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


def _independent_depths(data_cache) -> tuple[dict, dict]:
    """Each query's evidence depth counted here with MiniLM's tokenizer (no special tokens), from
    the positions in queries.jsonl and the documents as the task hands them to the model."""
    from transformers import AutoTokenizer

    from evalkit.schema import PathsConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex
    from tests.helpers import minilm_path, raw_data_dir

    task = TaskIndex().load("zh_longdoc", TaskConfig(names=["zh_longdoc"], limit=12),
                            PathsConfig(raw_data=str(raw_data_dir()), cache_dir=str(data_cache)))
    tok = AutoTokenizer.from_pretrained(minilm_path())
    depths = {}
    for subset in task.mteb_task.hf_subsets:
        folder = data_cache / "data" / subset
        rows = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
        corpus = task.mteb_task.dataset[subset]["test"]["corpus"]
        docs = dict(zip(corpus["id"], corpus["text"]))
        for q in task.mteb_task.dataset[subset]["test"]["queries"]["id"]:
            spans = next(r["evidence"] for r in rows if r["_id"] == q)
            depths[(subset, q)] = min(len(tok(docs[e["corpus-id"]][: e["start"]], add_special_tokens=False)["input_ids"])
                                      for e in spans)
    return depths, task


def test_quality_by_evidence_depth_in_the_models_own_tokens(longdoc, data_cache):
    tmp, rec = longdoc
    depth = rec.result.evalkit.extra["by_depth"]
    buckets = {b["bucket"]: b for b in depth["buckets"]}
    items = ResultStore(tmp).load_items(rec.path)
    assert depth["queries_without_position"] == 0 and depth["long_docs"] == "truncate"
    assert sum(b["queries"] for b in buckets.values()) == items.n_items() == 48
    weighted = sum(b["weight"] * b["score"] for b in buckets.values() if b["queries"])
    assert weighted == pytest.approx(rec.main_score, abs=5e-6 + 1e-12)  # the buckets average to the task score
    assert depth["window"] == depth["reach"] == 254  # 256 tokens less [CLS] and [SEP]

    want, _ = _independent_depths(data_cache)
    labels = [label for *_, label in BUCKETS]
    bucket_of = {k: next(lab for (_, high, lab) in BUCKETS if high is None or n <= high) for k, n in want.items()}
    for label in labels:
        mine = [k for k, b in bucket_of.items() if b == label]
        assert buckets[label]["queries"] == len(mine), label
        assert buckets[label]["beyond_window"] == buckets[label]["beyond_reach"] == sum(want[k] >= 254 for k in mine)
    # laws_deep takes one query per (Qwen3) depth bucket in turn: half of its 12 lie 2k tokens deep or more
    assert sum(b["beyond_window"] for b in buckets.values()) >= 6
    assert sum(buckets[label]["queries"] for label in ("2k–8k", "8k–32k", ">32k")) >= 6

    # the interval: an independent stratified resampling of the shallowest bucket (all 4 subsets)
    values = {(s.subset, q): v for s in items.subsets for q, v in zip(s.ids, s.main_values())}
    shallow = [k for k, b in bucket_of.items() if b == "≤512"]
    by_subset = {s.subset: np.array([values[k] for k in shallow if k[0] == s.subset]) for s in items.subsets}
    share = {s: len(v) / 12 for s, v in by_subset.items() if len(v)}
    share = {s: w / sum(share.values()) for s, w in share.items()}
    rng = np.random.default_rng(1)
    draws = sum(share[s] * rng.choice(by_subset[s], (4000, len(by_subset[s]))).mean(axis=1) for s in share)
    low, high = np.percentile(draws, [2.5, 97.5])
    b = buckets["≤512"]
    assert b["ci_low"] <= b["score"] <= b["ci_high"]
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((low, high), abs=0.03)


def test_chunked_evidence_is_never_out_of_reach():
    from evalkit.results.items import SubsetItems, TaskItems
    from evalkit.tasks.by_depth import by_depth

    items = TaskItems("t", "ndcg_at_10", [SubsetItems("test", "a", ["q1", "q2", "q3"], "v", {"v": [1.0, 0.0, 0.5]})])
    depths = {"a": {"q1": 10, "q2": 300, "q3": 9000}}
    trunc = by_depth(items, depths, 254, chunked=False, n_resamples=200)
    chunk = by_depth(items, depths, 254, chunked=True, n_resamples=200)
    # q2 (300 tokens deep) is in the first bucket, but past a 254-token window
    assert [b["beyond_window"] for b in trunc["buckets"]] == [1, 0, 0, 1, 0] == [b["beyond_window"] for b in chunk["buckets"]]
    assert [b["beyond_reach"] for b in trunc["buckets"]] == [1, 0, 0, 1, 0]
    assert [b["beyond_reach"] for b in chunk["buckets"]] == [0] * 5
    assert [b["score"] for b in trunc["buckets"]] == [0.5, None, None, 0.5, None]
    unknown = by_depth(items, depths, None, chunked=False, n_resamples=200)  # no known window: no counts, not zeros
    assert {b["beyond_window"] for b in unknown["buckets"]} == {b["beyond_reach"] for b in unknown["buckets"]} == {None}
    assert [b["queries"] for b in trunc["buckets"]] == [2, 0, 0, 1, 0]


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


def test_leaderboard_and_seed_report_show_quality_by_depth(longdoc, tmp_path):
    from PIL import Image

    from evalkit.leaderboard import build_leaderboard, write_outputs
    from evalkit.leaderboard.markdown import depth_cell
    from evalkit.reports.seed import seed_rows

    tmp, rec = longdoc
    board = build_leaderboard([tmp / "outputs" / "results"])
    (cell,) = [c for c in board.cells if c.task == "zh_longdoc"]
    stored = rec.result.evalkit.extra["by_depth"]["buckets"]
    assert [b.model_dump() for b in cell.by_depth] == [{k: b[k] for k in cell.by_depth[0].model_dump()} for b in stored]
    written = write_outputs(board, tmp_path / "leaderboard.json", formats=("json", "md", "html", "png"))
    md, page = written["md"].read_text(encoding="utf-8"), written["html"].read_text(encoding="utf-8")
    assert "## Quality by evidence depth" in md and "Quality by evidence depth</h2>" in page
    assert all(depth_cell(b) in md for b in cell.by_depth if b.queries)
    with Image.open(written["by_length_png"]) as img:  # the length panel and the depth panel
        assert img.width >= 2 * 5.5 * 110 - 2
    # the seed report's row: the buckets past 8k tokens, recomputed here from the result file
    deep = [b for b in stored if b["bucket"] in ("8k–32k", ">32k") and b["queries"]]
    score = sum(b["weight"] * b["score"] for b in deep) / sum(b["weight"] for b in deep)
    unread = sum(b["beyond_reach"] for b in deep)
    (row,) = [cells for label, cells in seed_rows(board, {})[1] if "evidence beyond 8k" in label]
    assert row[0].startswith(f"{100 * score:.2f}") and f"({sum(b['queries'] for b in deep)} queries, {unread} unread)" in row[0]


def test_depth_buckets_per_subset_average_to_the_subset_scores():
    from evalkit.results.items import SubsetItems, TaskItems
    from evalkit.tasks.by_depth import by_depth

    rng = np.random.default_rng(3)
    subsets = [SubsetItems("test", name, [f"q{i}" for i in range(n)], "v", {"v": list(rng.uniform(0, 1, n))})
               for name, n in (("a", 30), ("b", 7))]
    depths = {s.subset: {q: int(d) for q, d in zip(s.ids, rng.integers(0, 40000, len(s.ids)))} for s in subsets}
    out = by_depth(TaskItems("t", "v", subsets), depths, 254, chunked=False, n_resamples=300)
    for s in subsets:
        buckets = out["subsets"][s.subset]
        assert sum(b["queries"] for b in buckets) == len(s.ids)
        assert sum(b["weight"] * b["score"] for b in buckets if b["queries"]) == pytest.approx(s.score())
    assert sum(b["weight"] * b["score"] for b in out["buckets"] if b["queries"]) == pytest.approx(
        np.mean([s.score() for s in subsets]))
