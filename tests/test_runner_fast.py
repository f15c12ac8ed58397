"""The runner, the result store, variants and the leaderboard end to end in seconds: a tiny BEIR
task (two subsets) and a fake encoder (hashed trigrams) in place of the model. Everything else
is real: the encoder stack's layers, the embedding cache, mteb's retrieval evaluator, the
store's files. Scores are checked against nDCG@10 computed here with numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.callbacks.base import Callback
from evalkit.errors import ModelLoadError
from evalkit.leaderboard import build_leaderboard
from evalkit.results import ResultStore, read_failure
from evalkit.runner import run
from evalkit.schema import EncodeConfig, Job, PathsConfig, TaskConfig, validate_model_config
from evalkit.variants import variant_of
from tests.fixtures.fake_encoder import FakeEncoder, fake_stack, fake_vectors
from tests.fixtures.tiny_beir import SUBSETS


class Events(Callback):
    def __init__(self):
        self.events, self.batches = [], 0

    def on_job_start(self, job):
        self.events.append("job_start")

    def on_model_loaded(self, job):
        self.events.append("model_loaded")

    def on_task_start(self, job, task):
        self.events.append(f"task_start:{task.name}")

    def on_batch_end(self, report):
        self.batches += 1

    def on_task_end(self, job, task, record):
        self.events.append(f"task_end:{task.name}:{record.status}")

    def on_job_end(self, job, records):
        self.events.append("job_end")


def fake_job(tmp_path: Path, spec: Path, *, name: str = "fake", dimension: int | None = None, overwrite=False,
             encode: dict | None = None, **task) -> Job:
    model = validate_model_config({"name": name, "backend": "hf", "model_id": "fake-trigrams", "dtype": "float32",
                                   "dimension": dimension})
    return Job(model=model, task=TaskConfig(names=["user"], spec=str(spec), **task), encode=EncodeConfig(**(encode or {})),
               paths=PathsConfig(root=str(tmp_path / "out")), overwrite=overwrite)


def ndcg10_by_numpy(subset: dict, dim: int) -> dict[str, float]:
    """nDCG@10 per query with one relevant document: 1 / log2(1 + rank) by cosine similarity."""
    doc_ids = [d for d, _ in subset["corpus"]]
    docs = fake_vectors([t for _, t in subset["corpus"]], dim)
    out = {}
    for qid, text in subset["queries"]:
        sims = docs @ fake_vectors([text], dim)[0]
        relevant = next(d for q, d, _ in subset["qrels"] if q == qid)
        rank = 1 + int((sims > sims[doc_ids.index(relevant)]).sum())
        out[qid] = 1 / np.log2(1 + rank) if rank <= 10 else 0.0
    return out


def test_a_run_scores_files_resumes_and_answers_from_the_cache(tmp_path, tiny_beir_spec):
    built: list[FakeEncoder] = []
    events = Events()
    (first,) = run(fake_job(tmp_path, tiny_beir_spec), [events], stack=fake_stack(built))
    assert first.status == "ok" and Path(first.path).is_file()
    assert events.events == ["job_start", "task_start:tiny_faq", "model_loaded", "task_end:tiny_faq:ok", "job_end"]
    # the score is nDCG@10 by hand, per subset and as their mean
    want = {name: ndcg10_by_numpy(subset, 64) for name, subset in SUBSETS.items()}
    subset_scores = {sub: s for _, sub, _, s in first.result.subset_scores()}
    for name, per_query in want.items():
        assert subset_scores[name] == pytest.approx(np.mean(list(per_query.values())), abs=1e-5)
    assert first.main_score == pytest.approx(np.mean([np.mean(list(v.values())) for v in want.values()]), abs=1e-5)
    items = ResultStore(tmp_path / "out" / "results").load_items(Path(first.path))
    for sub in items.subsets:  # per-query scores from the same evaluation
        assert dict(zip(sub.ids, sub.main_values())) == pytest.approx(want[sub.subset], abs=1e-6)
    block = first.result.evalkit
    assert block.encode["cache_misses"] == block.encode["texts"] == sum(
        len(s["corpus"]) + len(s["queries"]) for s in SUBSETS.values())
    assert block.computed is None and block.model.meta["backend"] == "fake"

    (again,) = run(fake_job(tmp_path, tiny_beir_spec), [], stack=fake_stack(built))  # complete: skipped
    assert again.status == "skipped" and again.main_score == first.main_score and len(built) == 1

    events = Events()  # recomputed from the cache: the model never loads
    (third,) = run(fake_job(tmp_path, tiny_beir_spec, overwrite=True), [events], stack=fake_stack(built))
    assert third.status == "ok" and third.main_score == first.main_score
    assert "model_loaded" not in events.events and events.batches == 0 and len(built) == 1
    assert third.result.evalkit.encode["cache_hits"] > 0 == third.result.evalkit.encode["cache_misses"]


def test_a_score_changing_setting_is_its_own_variant_and_file(tmp_path, tiny_beir_spec):
    base, limited = fake_job(tmp_path, tiny_beir_spec), fake_job(tmp_path, tiny_beir_spec, limit=2)
    assert (variant_of(base).label, variant_of(limited).label) == ("fake", "fake · limit=2")
    assert variant_of(limited).id == "fake+limit=2"
    speed = fake_job(tmp_path, tiny_beir_spec, encode={"dedup": False, "token_budget": 99})
    assert variant_of(speed) == variant_of(base) and speed.config_hash() == base.config_hash()  # speed-only
    (a,) = run(base, [], stack=fake_stack())
    (b,) = run(limited, [], stack=fake_stack())
    assert a.path != b.path and Path(b.path).parent.parent.name == "fake+limit=2"
    assert sum(len(s.ids) for s in ResultStore(tmp_path / "out" / "results").load_items(Path(b.path)).subsets) == 4
    store = ResultStore(tmp_path / "out" / "results")
    found = dict(config_hash=base.config_hash(), fingerprint=a.result.evalkit.task.fingerprint,
                 expected={"test": ["faq", "docs"]})
    assert store.find_complete("fake", None, "tiny_faq", **found) is not None
    assert store.find_complete("fake", None, "tiny_faq", **(found | {"config_hash": "sha256:other"})) is None
    assert store.find_complete("fake", None, "tiny_faq", **(found | {"fingerprint": "sha256:other"})) is None
    assert store.find_complete("fake", None, "tiny_faq", **(found | {"expected": {"test": ["faq", "x"]}})) is None


def test_a_failing_task_leaves_a_failure_record_the_leaderboard_shows(tmp_path, tiny_beir_spec):
    def broken(job, hooks):
        raise RuntimeError("GPU fell off")

    with pytest.raises(ModelLoadError, match="GPU fell off"):
        run(fake_job(tmp_path, tiny_beir_spec), [], stack=fake_stack(make=broken))
    (failure,) = (tmp_path / "out" / "results").rglob("_failures/tiny_faq.json")
    record = read_failure(failure)
    assert record.stage == "model_load" and "GPU fell off" in record.error
    board = build_leaderboard([tmp_path / "out" / "results"])
    (cell,) = board.cells
    assert cell.status == "failed" and "GPU fell off" in cell.error and cell.main_score is None


def test_leaderboard_of_two_fake_models_pairs_their_items(tmp_path, tiny_beir_spec):
    records = {}
    for name, dim in (("fake_a", 64), ("fake_b", 8)):
        (records[name],) = run(fake_job(tmp_path, tiny_beir_spec, name=name, dimension=dim), [], stack=fake_stack())
    board = build_leaderboard([tmp_path / "out" / "results"], baseline="fake_b")
    cells = {c.model: c for c in board.cells}
    for name, rec in records.items():
        assert cells[name].status == "ok" and cells[name].main_score == pytest.approx(rec.main_score, abs=1e-6)
        assert cells[name].ci_low <= cells[name].main_score <= cells[name].ci_high and cells[name].n_items == 8
    (cmp,) = board.comparisons
    a = {name: ndcg10_by_numpy(s, 64) for name, s in SUBSETS.items()}
    b = {name: ndcg10_by_numpy(s, 8) for name, s in SUBSETS.items()}
    diffs = [a[s][q] - b[s][q] for s in SUBSETS for q in a[s]]
    assert (cmp.model_a, cmp.model_b, cmp.n) == ("fake_a", "fake_b", 8)
    assert cmp.diff == pytest.approx(np.mean([np.mean([a[s][q] - b[s][q] for q in a[s]]) for s in SUBSETS]), abs=1e-5)
    assert (cmp.wins, cmp.ties, cmp.losses) == (sum(d > 1e-12 for d in diffs), sum(abs(d) <= 1e-12 for d in diffs),
                                                sum(d < -1e-12 for d in diffs))
    saved = json.loads(Path(records["fake_a"].path).read_text())
    assert saved["evalkit"]["model"]["variant"] == "fake_a" and saved["evalkit"]["model"]["config"]["dimension"] == 64


def test_a_task_kind_checks_its_own_settings_section():
    """task.perf is the perf kind's section of task:, validated by the task index; no other section exists."""
    from evalkit.errors import ConfigError
    from evalkit.schema import job_config
    from evalkit.tasks.index import kind_settings

    def perf_settings(raw):  # the perf kind's own section of task:, checked by the task index
        job = job_config({"model": {"name": "m", "backend": "hf", "model_id": "x"}, "task": {"names": ["perf"], "perf": raw}})
        return kind_settings(job.task, "perf")

    with pytest.raises(ConfigError, match="unknown field 'perf.lenghts'"):
        perf_settings({"lenghts": [128]})
    with pytest.raises(ConfigError, match="perf.lengths"):
        perf_settings({"lengths": [0]})
    with pytest.raises(ConfigError, match=r"unknown task field\(s\) 'pref'; valid: .*perf"):  # a section of no kind
        kind_settings(job_config({"model": {"name": "m", "backend": "hf", "model_id": "x"},
                                  "task": {"names": ["perf"], "pref": {"lengths": [128]}}}).task, "perf")
    with pytest.raises(ConfigError, match="unknown field 'limt'"):  # a plain typo is no section
        job_config({"model": {"name": "m", "backend": "hf", "model_id": "x"}, "task": {"names": ["perf"], "limt": 5}})
    plain = job_config({"model": {"name": "m", "backend": "hf", "model_id": "x"}, "task": {"names": ["perf"]}})
    tuned = job_config({"model": {"name": "m", "backend": "hf", "model_id": "x"},
                        "task": {"names": ["perf"], "perf": {"lengths": [128]}}})
    assert tuned.config_hash() == plain.config_hash()  # a kind's settings go into its tasks' fingerprints instead
    assert kind_settings(tuned.task, "perf").lengths == [128] and kind_settings(plain.task, "perf").lengths[0] == 128
