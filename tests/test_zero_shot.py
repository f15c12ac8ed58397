"""Zero-shot flags from mteb's model registry: a model that declares training on an mteb task is
marked on it, a model the registry does not know is unknown (never zero-shot), and
--zero-shot-only leaves the marked cells out of the means. The fake encoder stands in for the
models (their weights are not here): the flags depend on the model id only, which the fake runs
carry like any other config field."""

from __future__ import annotations

import mteb
import pytest

from evalkit.leaderboard import build_leaderboard
from evalkit.leaderboard.markdown import to_markdown
from evalkit.runner import run
from evalkit.schema import Job, PathsConfig, TaskConfig, validate_model_config
from tests.fixtures.fake_encoder import fake_stack

TRAINED = "NovaSearch/stella_en_400M_v5"  # declares STSBenchmark's training split in mteb's registry
DECLARES_OTHERS = "sentence-transformers/all-MiniLM-L6-v2"  # declares training data, not STSBenchmark


def test_the_registry_says_what_the_test_assumes():
    assert "STSBenchmark" in mteb.get_model_meta(TRAINED).get_training_datasets()
    assert "STSBenchmark" not in mteb.get_model_meta(DECLARES_OTHERS).get_training_datasets()


def test_packaged_minilm_is_looked_up_under_its_registry_name():
    from evalkit.leaderboard.zero_shot import declared_training
    from evalkit.schema import validate_model_config as cfg

    from tests.helpers import MINILM

    assert declared_training(cfg(MINILM).model_id) == mteb.get_model_meta(DECLARES_OTHERS).get_training_datasets()
    assert declared_training("/some/local/folder") is None and declared_training(None) is None


def job(tmp_path, spec, raw_dir, name: str, model_id: str) -> Job:
    model = validate_model_config({"name": name, "backend": "hf", "model_id": model_id, "dtype": "float32"})
    task = TaskConfig(names=["user", "STSBenchmark"], spec=str(spec), limit=24)
    return Job(model=model, task=task, paths=PathsConfig(root=str(tmp_path / "out"), raw_data=str(raw_dir)))


def test_flags_on_an_mteb_task_and_zero_shot_only_means(tmp_path, tiny_beir_spec, raw_dir):
    for name, model_id in (("trained", TRAINED), ("others", DECLARES_OTHERS), ("unlisted", "fake-trigrams")):
        records = run(job(tmp_path, tiny_beir_spec, raw_dir, name, model_id), [], stack=fake_stack())
        assert all(r.status == "ok" for r in records), [r.error for r in records]
    board = build_leaderboard([tmp_path / "out" / "results"])
    flags = {(c.model.split(" ·")[0], c.task): (c.zero_shot, c.training_overlap) for c in board.cells}
    assert flags[("trained", "STSBenchmark")] == (False, ["STSBenchmark"])
    assert flags[("trained", "tiny_faq")] == (True, [])  # a user task declaring no mteb dataset
    assert flags[("others", "STSBenchmark")] == (True, [])
    assert flags[("unlisted", "STSBenchmark")] == (None, []) and flags[("unlisted", "tiny_faq")] == (None, [])
    md = to_markdown(board)
    assert "‡ not zero-shot" in md and "trained on STSBenchmark" in md and " ?" in md

    only = build_leaderboard([tmp_path / "out" / "results"], zero_shot_only=True)
    means = {s.model.split(" ·")[0]: s for s in only.summary}
    cells = {(c.model.split(" ·")[0], c.task): c.main_score for c in only.cells}
    assert means["trained"].excluded == ["STSBenchmark"]
    assert means["trained"].mean == pytest.approx(cells[("trained", "tiny_faq")])
    assert means["unlisted"].excluded == [] and means["unlisted"].mean == pytest.approx(
        (cells[("unlisted", "tiny_faq")] + cells[("unlisted", "STSBenchmark")]) / 2)
