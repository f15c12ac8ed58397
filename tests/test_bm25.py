"""``model=bm25``: evalkit's lexical tokens, bm25s's scores against BM25 computed here with numpy,
the model through mteb's search protocol equal to the data cards' baseline on the same data, its
per-query items paired with a dense model's on the leaderboard, clear errors where it does not apply."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from evalkit import lexical
from evalkit.data import stats, store
from evalkit.errors import ConfigError
from evalkit.leaderboard import build_leaderboard
from evalkit.runner import run
from evalkit.schema import validate_model_config
from tests.fixtures.fake_encoder import fake_stack
from tests.helpers import make_job
from tests.test_runner_fast import fake_job

BM25 = {"name": "bm25", "backend": "bm25"}


def test_tokens_cjk_runs_and_bigrams_identifier_parts():
    assert lexical.tokens("检索增强，生成") == ["检", "索", "增", "强", "检索", "索增", "增强", "生", "成", "生成"]
    assert lexical.tokens("read_csv HTTPServer getValue2 x86") == ["read", "csv", "http", "server", "get", "value2", "x86"]
    assert lexical.tokens("用 pandas 读取") == ["用", "pandas", "读", "取", "读取"]
    assert lexical.tokens("用 pandas 读取", latin_only=True) == ["pandas"]
    assert lexical.tokens("") == [] and lexical.tokens("，。!?") == []


def numpy_bm25(query: list[str], docs: list[list[str]], k1=1.2, b=0.75) -> np.ndarray:
    """Lucene's BM25 written out: idf = ln(1 + (N - df + .5) / (df + .5)), tf / (tf + k1 (1 - b + b |d| / avgdl)),
    summed over the query's distinct terms."""
    n, avg = len(docs), np.mean([len(d) for d in docs])
    out = np.zeros(n)
    for term in set(query):
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, doc in enumerate(docs):
            tf = Counter(doc)[term]
            out[i] += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avg))
    return out


def test_bm25s_index_scores_equal_numpy_bm25():
    texts = ["法律 条文 规定 合同 的 效力", "合同法 规定 违约 责任", "man page for grep and sed", "grep searches files",
             "read_csv reads a CSV file", "天气 很好"]
    docs = [lexical.tokens(t) for t in texts]
    index = lexical.BM25Index(docs)
    for query in ("合同的效力", "grep files", "readCsv file", "无关 zzz", "合同 合同 规定"):
        q = lexical.tokens(query)
        np.testing.assert_allclose(index.scores(q), numpy_bm25(q, docs), rtol=1e-5, atol=1e-6)
        expected = numpy_bm25(q, docs)
        assert [i for i, _ in index.top(q, 3)] == [i for i in np.argsort(-expected, kind="stable")[:3] if expected[i] > 0]


@pytest.mark.parametrize(("task_name", "subset", "builder"), [("zh_longdoc", "drcd", "drcd"), ("code_search", "cosqa", "cosqa")])
def test_model_bm25_scores_the_data_cards_baseline(task_name, subset, builder, tmp_path, raw_dir, data_cache):
    folder, _ = store.ensure_built(builder, raw_dir, data_cache)
    card = stats.retrieval_baseline(folder)  # what `python -m evalkit.data info` prints for the subset
    job = make_job(tmp_path, [task_name], model=validate_model_config(BM25), subsets=[subset], cache_dir=data_cache)
    (record,) = run(job)
    assert record.status == "ok", record.error
    (scores,) = record.result.task_result["scores"]["test"]
    assert scores["ndcg_at_10"] == pytest.approx(card["bm25_ndcg_at_10"], abs=1e-5)
    assert scores["ndcg_at_1"] == pytest.approx(card["bm25_ndcg_at_1"], abs=1e-5)
    assert record.result.evalkit.items_file and record.result.evalkit.model.meta["similarity"] == "bm25"


def test_leaderboard_pairs_bm25_with_a_dense_model(tmp_path, tiny_beir_spec):
    (dense,) = run(fake_job(tmp_path, tiny_beir_spec, name="fake_dense", dimension=8), [], stack=fake_stack())
    job = fake_job(tmp_path, tiny_beir_spec).model_copy(update={"model": validate_model_config(BM25)})
    (lexical_run,) = run(job)
    assert dense.status == lexical_run.status == "ok"
    board = build_leaderboard([tmp_path / "out" / "results"], baseline="bm25")
    (cmp,) = board.comparisons
    assert {cmp.model_a, cmp.model_b} == {"fake_dense", "bm25"} and cmp.n == 8
    sign = 1 if cmp.model_a == "fake_dense" else -1
    assert cmp.diff == pytest.approx(sign * (dense.main_score - lexical_run.main_score), abs=1e-5)


def test_bm25_says_where_it_does_not_apply(tmp_path, tiny_beir_spec):
    job = fake_job(tmp_path, tiny_beir_spec).model_copy(update={"model": validate_model_config(BM25)})
    with pytest.raises(ConfigError, match="long_docs=truncate"):
        run(job.model_copy(update={"encode": job.encode.model_copy(update={"long_docs": "chunk"})}))
    from evalkit.encoders.backends import bm25

    with pytest.raises(ValueError, match="retrieval tasks"):
        bm25.build(bm25.Config(name="bm25")).encode(["x"], role="query")


def test_sweep_baseline_runs_bm25_on_the_jobs_retrieval_tasks(tmp_path, tiny_beir_spec):
    from evalkit.leaderboard.baseline import baseline_job, run_baseline

    job = fake_job(tmp_path, tiny_beir_spec, name="fake_dense", dimension=8, limit=4)
    (dense,) = run(job, [], stack=fake_stack())
    manifest = run_baseline(job, tmp_path / "sweep" / "0_model=fake_dense")
    saved = json.loads(manifest.read_text())
    assert saved["model"] == "bm25 · limit=4" and saved["tasks"] == ["tiny_faq"] and saved["status"] == "completed"
    board = build_leaderboard([tmp_path / "sweep", tmp_path / "out" / "results"], baseline="bm25 · limit=4")
    assert {c.model for c in board.cells} == {"fake_dense · limit=4", "bm25 · limit=4"}
    (cmp,) = board.comparisons
    assert cmp.n == 7  # paired per query: limit=4 per subset, faq's 4 and docs' 3
    bm25_job = baseline_job(job)
    assert baseline_job(bm25_job) is None  # BM25 itself needs no baseline
    assert baseline_job(job.model_copy(update={"task": job.task.model_copy(update={"names": ["mixed_lang"], "spec": None})})) is None
