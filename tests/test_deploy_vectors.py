"""Compressed vectors (encode.vectors) and quantised runtimes (model.runtime): scored through mteb,
checked against the same quantisation computed here with numpy and scipy on MiniLM's vectors
(sentence-transformers' encode, outside evalkit's stack), and kept apart as variants."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from evalkit.errors import ConfigError
from evalkit.leaderboard import build_leaderboard
from evalkit.runner import run
from evalkit.schema import EncodeConfig, validate_model_config
from evalkit.variants import variant_of
from tests.fixtures.fake_encoder import fake_stack
from tests.fixtures.tiny_beir import SUBSETS
from tests.helpers import make_job, minilm_cfg, minilm_path, raw_data_dir
from tests.test_runner_fast import fake_job

STS_PAIRS = 120


def int8_by_numpy(x: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """256 buckets per dimension between the calibration set's min and max, shifted to -128..127."""
    lo, hi = calibration.min(axis=0), calibration.max(axis=0)
    step = np.where(hi > lo, (hi - lo) / 255, 1)
    return np.clip(np.floor((x - lo) / step), 0, 255) - 128


def sign_vectors(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, 1.0, -1.0)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


@pytest.fixture(scope="module")
def st_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path(), device="cpu")


@pytest.fixture(scope="module")
def float_vectors(st_model):
    """MiniLM's float32 vectors as evalkit's backend computes them, checked against
    sentence-transformers' own encode (a component within 1e-5 of zero could take either sign
    between the two, so the binary reference starts from the backend's vectors)."""
    from evalkit.encoders.backends.sentence_tf import build
    from evalkit.encoders.base import Role

    backend = build(minilm_cfg(device="cpu"))

    def encode(texts: list[str]) -> np.ndarray:
        ours = backend.encode(texts, role=Role.SYMMETRIC)
        np.testing.assert_allclose(ours, st_model.encode(texts, normalize_embeddings=True), atol=1e-5)
        return ours

    return encode


def sts_pairs() -> tuple[list[str], list[str], np.ndarray]:
    with open(raw_data_dir() / "stsb" / "stsb-en-test.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[:STS_PAIRS]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


@pytest.mark.parametrize("vectors", ["int8", "binary"])
def test_minilm_sts_matches_numpy(tmp_path, shared_embeddings, float_vectors, vectors):
    job = make_job(tmp_path, ["STSBenchmark"], limit=STS_PAIRS,
                   encode={"vectors": vectors, "cache_path": str(shared_embeddings)})
    (record,) = run(job, [])
    assert record.status == "ok"
    first, second, gold = sts_pairs()
    a, b = float_vectors(first), float_vectors(second)
    if vectors == "int8":  # calibrated on the task's first encode call: the first sentences
        qa, qb = int8_by_numpy(a, a), int8_by_numpy(b, a)
    else:
        qa, qb = sign_vectors(a), sign_vectors(b)
    # int8: the model's cosine; binary: dot of ±1 vectors = dim - 2·hamming
    sims = np.sum(cosine(qa, qb) * np.eye(len(qa)), axis=1) if vectors == "int8" else np.sum(qa * qb, axis=1)
    # mteb's STS evaluator ranks by its own float cosine, whose rounding breaks some exact Hamming
    # ties (Spearman then moves by ~3e-5); retrieval scores by the model's similarity: exact there
    tolerance = 2e-5 if vectors == "int8" else 1e-4
    assert record.main_score == pytest.approx(spearmanr(sims, gold).statistic, abs=tolerance)
    float_score = spearmanr(np.sum(a * b, axis=1), gold).statistic
    assert record.main_score != pytest.approx(float_score, abs=1e-6)  # the quantisation did something
    computed = json.loads(Path(record.path).read_text())["evalkit"]["computed"]["vectors"]
    assert computed["bytes_per_vector"] == {"int8": 384, "binary": 48}[vectors]
    assert computed["index_mb_per_million_docs"] == computed["bytes_per_vector"]
    if vectors == "int8":
        assert [c["vectors"] for c in computed["calibration"]] == [STS_PAIRS]


def ndcg10(docs: np.ndarray, queries: np.ndarray, subset: dict) -> float:
    doc_ids = [d for d, _ in subset["corpus"]]
    sims = cosine(queries, docs)
    gains = []
    for row, (qid, _) in enumerate(subset["queries"]):
        relevant = next(d for q, d, _ in subset["qrels"] if q == qid)
        rank = 1 + int((sims[row] > sims[row, doc_ids.index(relevant)]).sum())
        gains.append(1 / np.log2(1 + rank) if rank <= 10 else 0.0)
    return float(np.mean(gains))


@pytest.mark.parametrize("vectors", ["uint8", "ubinary"])
def test_minilm_retrieval_matches_numpy_with_corpus_calibration(tmp_path, shared_embeddings, float_vectors,
                                                                 tiny_beir_spec, vectors):
    job = make_job(tmp_path, ["user"], spec=str(tiny_beir_spec),
                   encode={"vectors": vectors, "cache_path": str(shared_embeddings)})
    (record,) = run(job, [])
    assert record.status == "ok"
    scores = {sub: s for _, sub, _, s in record.result.subset_scores()}
    for name, subset in SUBSETS.items():
        docs = float_vectors([t for _, t in subset["corpus"]])
        queries = float_vectors([t for _, t in subset["queries"]])
        if vectors == "uint8":  # the corpus's ranges, for the corpus and the queries alike
            qd, qq = int8_by_numpy(docs, docs) + 128, int8_by_numpy(queries, docs) + 128
        else:
            qd, qq = sign_vectors(docs), sign_vectors(queries)
        assert scores[name] == pytest.approx(ndcg10(qd, qq, subset), abs=1e-5), name
    computed = json.loads(Path(record.path).read_text())["evalkit"]["computed"]["vectors"]
    if vectors == "uint8":
        assert [c["on"] for c in computed["calibration"]] == ["the corpus (faq/test)", "the corpus (docs/test)"]
        assert [c["vectors"] for c in computed["calibration"]] == [6, 4]


def test_every_vector_type_is_a_variant_scored_and_compared_to_float32(tmp_path, tiny_beir_spec):
    types = ["float32", "float16", "int8", "uint8", "binary", "ubinary"]
    jobs = {t: fake_job(tmp_path, tiny_beir_spec, encode={"vectors": t}) for t in types}
    ids = {variant_of(job).id for job in jobs.values()}
    assert len(ids) == len(types) and "fake+vectors=int8" in ids
    assert len({job.config_hash() for job in jobs.values()}) == len(types)
    records = {t: run(job, [], stack=fake_stack())[0] for t, job in jobs.items()}  # one cache: float32 vectors
    assert all(r.status == "ok" for r in records.values())
    assert len({r.path for r in records.values()}) == len(types)
    # the same bits, stored signed or unsigned: the same ranking
    assert records["binary"].main_score == records["ubinary"].main_score
    # a sweep adds a BM25 row (leaderboard.baseline_bm25): on the board, not among the deployment rows
    bm25_job = jobs["float32"].model_copy(update={"model": validate_model_config({"name": "bm25", "backend": "bm25"})})
    assert run(bm25_job)[0].status == "ok"
    board = build_leaderboard([tmp_path / "out" / "results"], baseline="fake")
    compared = {c.model_a for c in board.comparisons if c.model_b == "fake"}
    assert {f"fake · vectors={t}" for t in types[1:]} <= compared
    assert all(c.n == 8 for c in board.comparisons)

    from evalkit.reports.deploy import baseline_of, write_deploy_report

    assert baseline_of(board) == "fake"
    paths = write_deploy_report(board, {}, tmp_path)
    report = paths["md"].read_text(encoding="utf-8")
    assert "bm25" in {m.id for m in board.models} and "| bm25 |" not in report
    int8 = next(c for c in board.comparisons if c.model_a == "fake · vectors=int8")
    line = next(x for x in report.splitlines() if x.startswith("| fake · vectors=int8 | tiny_faq"))
    assert f"{100 * int8.diff:+.2f} [{100 * int8.ci_low:+.2f}, {100 * int8.ci_high:+.2f}]" in line
    assert f"{int8.wins}/{int8.ties}/{int8.losses}" in line
    cost = {x.split(" | ")[0].lstrip("| "): x for x in report.split("## Cost")[1].splitlines() if x.startswith("| fake")}
    assert cost["fake"].endswith("| 256 | 256 |")  # 64 float32 dims
    assert cost["fake · vectors=binary"].endswith("| 8 | 8 |") and cost["fake · vectors=int8"].endswith("| 64 | 64 |")
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and "<table>" in paths["html"].read_text(encoding="utf-8")


def test_bad_vector_settings_name_the_fields(tmp_path, tiny_beir_spec):
    with pytest.raises(Exception, match="float32.*float16.*int8.*uint8.*binary.*ubinary"):
        EncodeConfig(vectors="int4")
    with pytest.raises(ConfigError, match="encode.vectors=binary .*dimension.* is 60, not divisible by 8"):
        run(fake_job(tmp_path, tiny_beir_spec, dimension=60, encode={"vectors": "binary"}), [], stack=fake_stack())
    with pytest.raises(ConfigError, match="encode.long_docs=chunk"):
        run(fake_job(tmp_path, tiny_beir_spec, encode={"vectors": "int8", "long_docs": "chunk"}), [],
            stack=fake_stack())


def test_empty_calibration_set_is_an_error():
    from evalkit.encoders.layers.compress import calibration_ranges

    with pytest.raises(ConfigError, match="calibration set .*empty"):
        calibration_ranges(np.zeros((0, 8), dtype=np.float32), "the corpus (faq/test)")


def test_runtimes_are_variants_and_unavailable_ones_say_why(tmp_path):
    base = make_job(tmp_path, ["STSBenchmark"])
    int8 = make_job(tmp_path, ["STSBenchmark"], model=minilm_cfg(runtime="torch_dynamic_int8"))
    bf16 = make_job(tmp_path, ["STSBenchmark"], model=minilm_cfg(dtype="bfloat16"))
    assert [variant_of(j).id for j in (base, int8, bf16)] == [
        "minilm_l6", "minilm_l6+runtime=torch_dynamic_int8", "minilm_l6+dtype=bfloat16"]
    from evalkit.encoders.layers.cache import model_identity, model_key

    assert len({model_key(model_identity(j.model)) for j in (base, int8, bf16)}) == 3  # cache keys differ
    for name in ("onnx", "onnx_int8", "openvino"):
        with pytest.raises(Exception, match=f"runtime '{name}' is not available: .*transformers"):
            minilm_cfg(runtime=name)
    with pytest.raises(Exception, match="runtime: Input should be 'torch' or 'torch_dynamic_int8'"):
        minilm_cfg(runtime="tensorrt")


def test_dynamic_int8_refuses_gpu_or_half_weights_before_loading():
    from evalkit.encoders.backends.sentence_tf import check_runtime

    with pytest.raises(ConfigError, match="model.runtime=torch_dynamic_int8 .*model.dtype"):
        check_runtime(minilm_cfg(runtime="torch_dynamic_int8", dtype="bfloat16", device="cpu"))
    with pytest.raises(ConfigError, match="model.device"):
        check_runtime(minilm_cfg(runtime="torch_dynamic_int8", device="cuda"))
    check_runtime(minilm_cfg(runtime="torch_dynamic_int8", device="cpu"))  # fine


def test_dynamic_int8_minilm_is_close_to_fp32_and_smaller(st_model):
    from evalkit.encoders.backends.sentence_tf import build
    from evalkit.encoders.base import Role

    texts = ["A girl is styling her hair.", "Reset your password from the account settings page.",
             "The function sorted returns a new sorted list from an iterable."]
    fp32 = build(minilm_cfg(device="cpu"))
    int8 = build(minilm_cfg(device="cpu", runtime="torch_dynamic_int8"))
    a = fp32.encode(texts, role=Role.SYMMETRIC)
    b = int8.encode(texts, role=Role.SYMMETRIC)
    np.testing.assert_allclose(a, st_model.encode(texts, normalize_embeddings=True), atol=1e-5)
    cos = np.sum(a * b, axis=1)
    assert np.all(cos > 0.95) and not np.allclose(a, b, atol=1e-4)  # quantised, and still the same model
    assert int8.meta.weight_bytes < 0.7 * fp32.meta.weight_bytes  # the embedding table stays float32


def test_deploy_compare_variants_compose_into_distinct_jobs():
    import yaml

    from tests.helpers import CONF_DIR, compose_job

    experiment = yaml.safe_load((CONF_DIR / "experiment" / "deploy_compare.yaml").read_text(encoding="utf-8"))
    options = experiment["hydra"]["sweeper"]["params"]["+deploy"].split(",")
    assert options[0] == "fp32" and experiment["hydra"]["callbacks"]["leaderboard"]["deploy_report"] is True
    jobs = {o: compose_job(["model=minilm_l6", f"+deploy={o}"]) for o in options}
    assert jobs["vectors_int8"].encode.vectors == "int8" and jobs["dynamic_int8"].model.runtime == "torch_dynamic_int8"
    assert jobs["bf16"].model.dtype == "bfloat16" and variant_of(jobs["fp32"]).id == "minilm_l6"
    assert len({variant_of(j).id for j in jobs.values()}) == len(options)
