"""Comparisons that hold: every config variant keeps its own result, per-item scores equal
mteb's aggregate, and the leaderboard's intervals and p-values are what an independent
numpy computation over the stored per-item values gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.leaderboard import build_leaderboard
from evalkit.results import ResultStore
from evalkit.runner import run
from evalkit.schema import validate_model_config
from evalkit.variants import variant_of
from tests.helpers import make_job, minilm_cfg, run_cli

# mteb itself rounds retrieval metrics to 5 digits (mteb/_evaluators/retrieval_metrics.py,
# ``round(sum(...) / len(scores), 5)``) and writes others to 6: the exact per-item mean can
# differ from mteb's figure by half a unit of its last digit, never more.
MTEB_ROUNDING = 5e-6 + 1e-12

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")


@pytest.fixture(scope="module")
def max_length_sweep(tmp_path_factory):
    """The issue's own example: a sweep over model.max_length once silently lost a result."""
    tmp = tmp_path_factory.mktemp("variants")
    proc = run_cli(["-m", "model=minilm_l6", "model.max_length=12,256", "task=mteb", "task.names=[STSBenchmark]",
                    "task.limit=300", "callbacks.progress.mode=off"], tmp, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp / "outputs" / "multirun").iterdir()
    return tmp / "outputs", sweep, proc


def test_each_variant_keeps_its_own_result_and_row(max_length_sweep):
    import mteb

    outputs, sweep, proc = max_length_sweep
    files = sorted((outputs / "results").glob("*/*/STSBenchmark.json"))
    assert [f.parts[-3] for f in files] == ["minilm_l6+limit=300", "minilm_l6+max_length=12+limit=300"]
    scores = {f.parts[-3]: json.loads(f.read_text())["evalkit"]["main_score"] for f in files}
    assert len(set(scores.values())) == 2  # two configs, two different scores
    board = json.loads((sweep / "leaderboard.json").read_text())
    rows = {c["model"]: c["main_score"] for c in board["cells"]}
    assert set(rows) == {"minilm_l6 · limit=300", "minilm_l6 · max_length=12 · limit=300"}
    assert rows["minilm_l6 · max_length=12 · limit=300"] == pytest.approx(scores["minilm_l6+max_length=12+limit=300"], abs=1e-6)
    loaded = mteb.ResultCache(cache_path=outputs).load_results(include_remote=False)
    assert sorted(m.model_name for m in loaded.model_results) == sorted(scores)
    # the console ranking at the end of the sweep states the comparison
    assert "## Paired comparisons" in proc.stdout and "±" in proc.stdout


def test_truncate_and_chunk_are_two_variants_with_two_rows(tmp_path, data_cache):
    """The sweep a long-context user runs first: two configs, two files, two rows, mteb loads both;
    and the BM25 row a sweep of retrieval tasks adds (leaderboard.baseline_bm25), computed once."""
    import mteb

    proc = run_cli(["-m", "task=zh_longdoc", "task.limit=1", "task.subsets=[drcd]",
                    "encode.long_docs=truncate,chunk", "callbacks.progress.mode=off", "encode.cache=off",
                    f"paths.cache_dir={data_cache}"], tmp_path, timeout=600)  # built data shared, no vectors
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted((tmp_path / "outputs" / "results").glob("*/*/zh_longdoc.json"))
    assert [f.parts[-3] for f in files] == ["bm25+limit=1+subsets=drcd", "minilm_l6+limit=1+subsets=drcd",
                                            "minilm_l6+long_docs=chunk+limit=1+subsets=drcd"]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    board = json.loads((sweep / "leaderboard.json").read_text())
    rows = {c["model"]: c["main_score"] for c in board["cells"]}
    assert set(rows) == {"minilm_l6 · limit=1 · subsets=drcd", "minilm_l6 · long_docs=chunk · limit=1 · subsets=drcd",
                         "bm25 · limit=1 · subsets=drcd"}
    for f in files:
        assert rows[json.loads(f.read_text())["evalkit"]["model"]["variant"]] == pytest.approx(
            json.loads(f.read_text())["evalkit"]["main_score"], abs=1e-6)
    chunked = json.loads(files[2].read_text())["evalkit"]["encode"]
    assert chunked["long_docs"] == "chunk" and chunked["chunks"] > chunked["texts_chunked"] > 0
    loaded = mteb.ResultCache(cache_path=tmp_path / "outputs").load_results(include_remote=False)
    assert sorted(m.model_name for m in loaded.model_results) == [f.parts[-3] for f in files]


def test_rerun_skips_exactly_the_finished_pairs(max_length_sweep, tmp_path):
    outputs, _, _ = max_length_sweep
    job = make_job(tmp_path, ["STSBenchmark"], model=minilm_cfg(max_length=12), limit=300, encode={"cache": "off"})
    job = job.model_copy(update={"paths": job.paths.model_copy(update={"root": str(outputs)})})
    (rec,) = run(job)
    assert rec.status == "skipped"
    (other,) = run(job.model_copy(update={"model": minilm_cfg(max_length=64)}))
    assert other.status == "ok" and "max_length=64" in other.path


def test_generic_config_names_differ_by_model_id(tmp_path):
    base = {"name": "sentence_transformers", "backend": "sentence_transformers"}
    a = make_job(tmp_path, ["STSBenchmark"], model=validate_model_config(base | {"model_id": "/models/e5-small"}))
    b = make_job(tmp_path, ["STSBenchmark"], model=validate_model_config(base | {"model_id": "org/bge-m3"}))
    va, vb = variant_of(a), variant_of(b)
    assert va.id != vb.id and va.label == "e5-small" and vb.label == "org__bge-m3"


def test_a_result_of_another_config_is_moved_aside_never_overwritten(tmp_path):
    job = make_job(tmp_path, ["STSBenchmark"], limit=40, encode={"cache": "off"})
    (first,) = run(job)
    # as if the preset YAML had changed since (edited in place: save() would move it aside itself)
    data = json.loads(Path(first.path).read_text())
    data["evalkit"]["config_hash"] = "sha256:another-config"
    Path(first.path).write_text(json.dumps(data))
    (second,) = run(job)
    assert second.status == "ok" and second.path == first.path
    kept = list((tmp_path / "outputs" / "results").rglob("_superseded/STSBenchmark.*.json"))
    assert len(kept) == 1 and "another-config" in kept[0].read_text()


# ---- per-item scores: their mean is mteb's main score ---------------------------------------

@pytest.mark.parametrize("task, limit", [("zh_longdoc", 4), ("Tatoeba", 80), ("STSBenchmark", 120),
                                         ("Banking77Classification", 154)])
def test_per_item_mean_equals_the_main_score(task, limit, tmp_path, data_cache, shared_embeddings):
    (rec,) = run(make_job(tmp_path, [task], limit=limit, cache_dir=data_cache,
                          encode={"cache_path": str(shared_embeddings)}))
    assert rec.status == "ok", rec.error
    items = ResultStore(tmp_path).load_items(rec.path)
    assert items is not None and rec.result.evalkit.items_file == f"{task}.items.json.gz"
    by_subset = {sub: score for _, sub, _, score in rec.result.subset_scores()}
    for s in items.subsets:
        assert s.score() == pytest.approx(by_subset[s.subset], abs=MTEB_ROUNDING), s.subset
    assert items.score() == pytest.approx(rec.main_score, abs=MTEB_ROUNDING)


# ---- intervals and tests, independently --------------------------------------------------

@pytest.fixture(scope="module")
def two_models(tmp_path_factory, data_cache):
    root = tmp_path_factory.mktemp("two_models")
    for cfg in (minilm_cfg(), minilm_cfg(max_length=24)):
        run(make_job(root, ["zh_longdoc"], model=cfg, limit=20, subsets=["manpages"], cache_dir=data_cache))
    return root / "outputs" / "results"


def _values(results, variant):
    path = next(results.glob(f"{variant}/*/zh_longdoc.json"))
    items = ResultStore(results).load_items(path)
    (sub,) = items.subsets
    return dict(zip(sub.ids, sub.main_values()))


def test_interval_and_p_value_match_an_independent_numpy_computation(two_models):
    lb = build_leaderboard([two_models])
    a_id, b_id = "minilm_l6+limit=20+subsets=manpages", "minilm_l6+max_length=24+limit=20+subsets=manpages"
    va, vb = _values(two_models, a_id), _values(two_models, b_id)
    ids = sorted(va)
    x, y = np.array([va[i] for i in ids]), np.array([vb[i] for i in ids])
    rng = np.random.default_rng(12345)
    boots = x[rng.integers(0, len(x), (20_000, len(x)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    cell = next(c for c in lb.cells if c.model == "minilm_l6 · limit=20 · subsets=manpages")
    # Monte-Carlo tolerance of a 2.5% quantile over 10,000 scipy resamples, in bootstrap SEs
    tol = 5 * 0.027 * boots.std() + 1e-9
    assert cell.ci_low == pytest.approx(low, abs=tol) and cell.ci_high == pytest.approx(high, abs=tol)
    assert cell.n_items == len(ids) == 20

    d = x - y
    signs = rng.choice([-1, 1], size=(20_000, len(d)))
    null = np.abs((signs * d).mean(axis=1))
    p = (np.sum(null >= abs(d.mean()) - 1e-12) + 1) / (len(null) + 1)
    (comp,) = [c for c in lb.comparisons if c.task == "zh_longdoc"]
    assert {comp.model_a, comp.model_b} == {cell.model, "minilm_l6 · max_length=24 · limit=20 · subsets=manpages"}
    sign = 1 if comp.model_a == cell.model else -1
    assert comp.diff == pytest.approx(sign * d.mean(), abs=1e-9)
    assert comp.p_value == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / 10_000) + 0.005)
    wins, losses = ((d > 0).sum(), (d < 0).sum()) if sign == 1 else ((d < 0).sum(), (d > 0).sum())
    assert (comp.wins, comp.ties, comp.losses) == (wins, (d == 0).sum(), losses)
    assert comp.p_holm == pytest.approx(comp.p_value)  # a single comparison: Holm changes nothing


def test_missing_items_and_foreign_data_are_said_not_invented(two_models, tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(two_models, results)
    for f in results.glob("minilm_l6+max_length=24+limit=20*/*/zh_longdoc.items.json.gz"):
        f.unlink()  # as from an older evalkit or from mteb itself
    lb = build_leaderboard([results])
    no_items = next(c for c in lb.cells if "max_length=24" in c.model)
    assert no_items.ci_low is None and "not available" in no_items.ci_note and no_items.main_score is not None
    (comp,) = lb.comparisons
    assert comp.p_value is None and "not available" in comp.note
