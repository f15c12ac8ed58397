"""The profiler's figures are real: they move with the work done and match direct counts."""

from __future__ import annotations

import json
import statistics
import time
from types import SimpleNamespace

import numpy as np
import pytest

from evalkit.callbacks.base import CallbackList, JobInfo
from evalkit.encoders.base import BatchReport, Role
from evalkit.encoders.batching import Batching
from evalkit.encoders.backends.sentence_tf import build as build_st
from evalkit.tasks.perf.texts import law_corpus, texts_of_length
from evalkit.profiling.memory import best_rss_method
from evalkit.callbacks.profiler import Profiler, summarize_batches, union_seconds
from evalkit.runner import run
from tests.helpers import make_job, minilm_cfg, minilm_path, raw_data_dir


@pytest.fixture(scope="module")
def one_thread():
    """Timings with one intra-op thread: on a shared 2-core machine, spinning OpenMP threads
    make a small batch's latency mostly waiting for a core, not work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def profiled_minilm():
    """MiniLM whose batches go to a Profiler (the way the runner wires hooks)."""
    profiler = Profiler(print_table=False)
    hooks = CallbackList([profiler])
    t0 = time.perf_counter()
    # no padding-aware cuts: the tests below decide exactly which texts share a batch
    encoder = build_st(minilm_cfg(device="cpu"), hooks, Batching(min_efficiency=0.0))
    info = JobInfo(model_name="minilm_l6", config_hash="test", task_names=[], model_meta=encoder.meta,
                   model_load_seconds=time.perf_counter() - t0)
    profiler.on_job_start(info)
    profiler.on_model_loaded(info)
    yield profiler, encoder, info
    encoder.close()


@pytest.fixture(scope="module")
def corpus() -> str:
    return law_corpus(raw_data_dir(), min_chars=60_000)[0]


def run_task(profiler: Profiler, info: JobInfo, work) -> dict:
    """One task as the runner drives it: task start, the work, task end -> the profile."""
    task = SimpleNamespace(name="t", data_load_seconds=0.0)
    profiler.on_task_start(info, task)
    work()
    return profiler.task_figures(info, task)["profile"]


def count(encoder, texts: list[str]) -> list[int]:
    return encoder.view.lengths(encoder.prepare(texts, role=Role.DOCUMENT))


def test_ten_times_the_tokens_take_measurably_longer(profiled_minilm, corpus, one_thread):
    profiler, encoder, info = profiled_minilm
    short = texts_of_length(corpus, 16, 8, lambda t: count(encoder, t))
    long = texts_of_length(corpus, 160, 8, lambda t: count(encoder, t))
    assert set(count(encoder, short)) == {16} and set(count(encoder, long)) == {160}
    encoder.encode(short[:4], role=Role.DOCUMENT)  # warm-up

    ratios = []
    for _ in range(3):  # interleaved rounds: a burst of load on the shared machine hits both sides
        p_short = run_task(profiler, info, lambda: [encoder.encode(short, role=Role.DOCUMENT) for _ in range(2)])
        p_long = run_task(profiler, info, lambda: [encoder.encode(long, role=Role.DOCUMENT) for _ in range(2)])
        ratios.append(p_long["batch_latency_ms"]["p50"] / p_short["batch_latency_ms"]["p50"])
        # token figures are the real (unpadded) counts of what was encoded
        assert p_short["real_tokens"] == 2 * 8 * 16 and p_long["real_tokens"] == 2 * 8 * 160
        assert p_short["batches"] == 2 and p_short["texts"] == 16
        assert p_long["padding_efficiency"] == 1.0
        assert p_long["encode_seconds"]["document"] == p_long["encode_seconds"]["total"] > 0
        assert p_long["scoring_seconds"] >= 0
    # ~8x when the machine is quiet; "measurably longer" = well above noise, not a fixed time
    assert statistics.median(ratios) > 2.5, ratios


def test_padding_efficiency_and_throughput_match_direct_counts(profiled_minilm, corpus):
    profiler, encoder, info = profiled_minilm
    texts = texts_of_length(corpus, 30, 3, lambda t: count(encoder, t)) + texts_of_length(
        corpus, 90, 1, lambda t: count(encoder, t)
    )
    prof = run_task(profiler, info, lambda: encoder.encode(texts, role=Role.QUERY))
    assert prof["batches"] == 1
    assert prof["real_tokens"] == 3 * 30 + 90
    assert prof["padded_tokens"] == 4 * 90
    assert prof["padding_efficiency"] == pytest.approx((3 * 30 + 90) / (4 * 90), abs=1e-4)
    secs = prof["encode_seconds"]["query"]
    assert prof["tokens_per_s"] == pytest.approx(prof["real_tokens"] / secs, rel=0.01)
    assert prof["texts_per_s"] == pytest.approx(4 / secs, rel=0.01)


def test_truncation_counts_match_a_direct_tokenizer_count(profiled_minilm, corpus):
    from transformers import AutoTokenizer

    profiler, encoder, info = profiled_minilm
    # paragraphs of the statutes, 100 to 700 characters: some over MiniLM's 256 tokens
    texts = [corpus[i : i + n] for i, n in zip(range(0, 40_000, 2_000), range(100, 700, 30))]
    tok = AutoTokenizer.from_pretrained(minilm_path())  # an independent tokenizer instance
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    limit = encoder.meta.max_tokens
    assert 0 < sum(n > limit for n in lengths) < len(texts)

    prof = run_task(profiler, info, lambda: encoder.encode(texts, role=Role.DOCUMENT))
    assert prof["truncated_texts"] == sum(n > limit for n in lengths)
    assert prof["tokens_cut"] == sum(n - limit for n in lengths if n > limit)
    assert prof["real_tokens"] == sum(min(n, limit) for n in lengths)


@pytest.mark.parametrize("method", ["hwm", "sample"])
def test_peak_rss_grows_when_a_task_allocates_a_large_array(method):
    if method == "hwm" and best_rss_method() != "hwm":
        pytest.skip("/proc/self/clear_refs is not writable here")
    profiler = Profiler(print_table=False, rss_method=method)
    info = JobInfo(model_name="m", config_hash="h", task_names=[])
    size = 300 * 2**20

    def allocate():
        big = np.ones(size // 8, dtype=np.float64)  # touched: every page resident
        time.sleep(0.05)  # the sampling thread reads every 5 ms
        del big

    quiet = run_task(profiler, info, lambda: time.sleep(0.05))
    busy = run_task(profiler, info, allocate)
    grow_quiet = quiet["rss_peak_mb"] - quiet["rss_start_mb"]
    grow_busy = busy["rss_peak_mb"] - busy["rss_start_mb"]
    assert grow_busy >= 0.9 * size / 2**20, (grow_quiet, grow_busy)
    assert grow_quiet < grow_busy - 200
    assert method.replace("hwm", "VmHWM") in busy["rss_method"] or method in busy["rss_method"]
    assert busy["gpu_memory"] is None and "no CUDA" in busy["gpu_memory_note"]


def test_encode_time_is_the_union_of_overlapping_requests():
    # three concurrent requests of 1 s inside the same 1.5 s, then one alone: 2.5 s busy, not 4
    assert union_seconds([(0.0, 1.0), (0.2, 1.2), (0.5, 1.5), (3.0, 4.0)]) == pytest.approx(2.5)
    reports = [
        (1.0, BatchReport(role=Role.QUERY, n_texts=2, seconds=1.0, real_tokens=10, remote=True)),
        (1.5, BatchReport(role=Role.QUERY, n_texts=2, seconds=1.0, real_tokens=10, remote=True)),
    ]
    s = summarize_batches(reports)
    assert s["encode_seconds"]["query"] == pytest.approx(1.5)
    assert s["request_latency_ms"]["max"] == pytest.approx(1000.0)
    assert s["tokens_per_s"] == pytest.approx(20 / 1.5, rel=1e-2)
    assert s["padding_efficiency"] is None  # a server does not tell its padding


def test_profile_is_written_into_the_result_file(tmp_path):
    job = make_job(tmp_path, ["STSBenchmark"], limit=20, encode={"cache": "off"})
    records = run(job, [Profiler(print_table=False)])
    data = json.loads(open(records[0].path, encoding="utf-8").read())
    prof = data["evalkit"]["profile"]
    assert prof["model_load_seconds"] > 0 and prof["data_load_seconds"] > 0
    assert prof["texts"] > 0 and prof["real_tokens"] > 0 and prof["batches"] >= 1
    assert prof["task_seconds"] >= prof["encode_seconds"]["total"] > 0
    assert prof["device"]["torch"] and prof["device"]["cpu"] and prof["device"]["torch_threads"] >= 1
    assert prof["rss_peak_mb"] >= prof["rss_start_mb"] > 0
