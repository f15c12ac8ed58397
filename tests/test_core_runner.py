"""The runner works with plain objects (no Hydra): resume, overwrite, callbacks, failure records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalkit.callbacks.base import Callback
from evalkit.encoders.base import Role
from evalkit.encoders.backends.sentence_tf import build as build_st
from evalkit.errors import ConfigError
from evalkit.results import redact
from evalkit.runner import run
from evalkit.schema import validate_model_config
from tests.helpers import make_job, minilm_cfg, minilm_path, raw_data_dir


class Recorder(Callback):
    def __init__(self):
        self.events = []
        self.batches = []

    def on_job_start(self, job):
        self.events.append("job_start")

    def on_model_loaded(self, job):
        self.events.append("model_loaded")

    def on_task_start(self, job, task):
        self.events.append(f"task_start:{task.name}")

    def on_batch_end(self, report):
        self.batches.append(report)

    def task_figures(self, job, task):
        return {"recorder": len(self.batches)}

    def on_task_end(self, job, task, record):
        self.events.append(f"task_end:{task.name}")

    def on_job_end(self, job, records):
        self.events.append("job_end")


def test_run_with_plain_objects_resume_and_overwrite(tmp_path):
    job = make_job(tmp_path, ["STSBenchmark"], limit=50, encode={"cache": "off"})
    rec = Recorder()
    (first,) = run(job, [rec])
    assert first.status == "ok"
    # the model loads lazily: when the first task needs a vector the cache does not have
    assert rec.events == ["job_start", "task_start:STSBenchmark", "model_loaded", "task_end:STSBenchmark", "job_end"]
    # 50 pairs; mteb encodes each side in one call and identical texts within a call are
    # encoded once (dedup), so the hooks see exactly the unique texts of each side.
    import csv

    with open(raw_data_dir() / "stsb" / "stsb-en-test.csv", encoding="utf-8", newline="") as f:
        pairs = list(csv.reader(f))[:50]
    unique_per_side = len({p[0] for p in pairs}) + len({p[1] for p in pairs})
    assert sum(b.n_texts for b in rec.batches) == unique_per_side
    assert all(b.real_tokens <= b.padded_tokens for b in rec.batches)
    saved = json.loads(open(first.path).read())
    assert saved["evalkit"]["model"]["variant"] == "minilm_l6 · limit=50"
    # callbacks' figures are asked for before the file is written (unknown keys are kept)

    # Same config and data: skipped without loading the model.
    rec2 = Recorder()
    (second,) = run(job, [rec2])
    assert second.status == "skipped" and second.main_score == first.main_score
    assert "model_loaded" not in rec2.events

    # A change that can move the score (max_length) is not skipped; overwrite forces.
    job3 = job.model_copy(update={"model": minilm_cfg(max_length=32)})
    (third,) = run(job3, [])
    assert third.status == "ok" and third.path != first.path  # its own variant, its own file
    job4 = job.model_copy(update={"overwrite": True})
    (fourth,) = run(job4, [])
    assert fourth.status == "ok" and fourth.main_score == pytest.approx(first.main_score, abs=1e-9)


def test_sentence_transformer_backend_matches_plain_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = ["长沙市的天气怎么样", "How are you today?", "x" * 3000, "", "def f(x): return x"]
    enc = build_st(minilm_cfg(batch_size=2, dtype="float32"))
    ours = enc.encode(texts, role=Role.DOCUMENT)
    ref = SentenceTransformer(minilm_path(), device="cpu").encode(texts, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (5, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_unknown_backend_and_secret_redaction():
    with pytest.raises(ConfigError, match="valid backends"):
        validate_model_config({"name": "x", "backend": "nope"})
    cleaned = redact({"api_key": "sk-123", "api_key_env": "OPENAI_API_KEY", "nested": [{"token": "t"}], "name": "m"})
    assert cleaned == {"api_key": "***", "api_key_env": "OPENAI_API_KEY", "nested": [{"token": "***"}], "name": "m"}
    assert "sk-123" not in json.dumps(cleaned)


def test_summary_table_shows_each_subset_under_the_mean():
    import io

    from evalkit.callbacks.base import JobInfo, TaskRecord
    from evalkit.callbacks.summary import SummaryTable

    from evalkit.results import EvalkitBlock, ModelBlock, ResultFile, TaskBlock

    scores = {"task_name": "zh_longdoc",
              "scores": {"test": [{"hf_subset": "laws", "main_score": 0.12843}, {"hf_subset": "drcd", "main_score": 0.25047}]}}
    block = EvalkitBlock(model=ModelBlock(name="m", variant="m", variant_id="m"), task=TaskBlock(name="zh_longdoc"),
                         main_score=0.18945, config_hash="h", date="2026")
    rec = TaskRecord(model_name="m", task_name="zh_longdoc", status="ok", result=ResultFile(task_result=scores, evalkit=block))
    out = io.StringIO()
    SummaryTable(stream=out).on_job_end(JobInfo(model_name="m", config_hash="h", task_names=["zh_longdoc"]), [rec])
    lines = out.getvalue().splitlines()
    row = next(i for i, ln in enumerate(lines) if "zh_longdoc" in ln)
    assert f"{rec.main_score:.4f}" in lines[row]
    assert "laws" in lines[row + 1] and "0.1284" in lines[row + 1]
    assert "drcd" in lines[row + 2] and "0.2505" in lines[row + 2]


def test_a_job_whose_vectors_are_all_cached_never_loads_the_model(tmp_path):
    job = make_job(tmp_path, ["STSBenchmark"], limit=40)  # embedding cache on (the default)
    first = Recorder()
    (a,) = run(job, [first])
    assert "model_loaded" in first.events
    again = Recorder()
    (b,) = run(job.model_copy(update={"overwrite": True}), [again])  # recompute every score
    assert b.status == "ok" and b.main_score == pytest.approx(a.main_score, abs=1e-12)
    assert "model_loaded" not in again.events and again.batches == []  # no forward pass at all
    assert b.result.evalkit.encode["cache_misses"] == 0 and b.result.evalkit.encode["cache_hits"] > 0
