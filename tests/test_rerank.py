"""The reranking stage: Qwen3-Reranker's prompt and yes/no scoring against the model card's recipe
(written out here) and mteb's own wrapper; a reranked run on the tiny BEIR task with a tiny
cross-encoder and a tiny Qwen3 reranker, its first stage answered from the embedding cache, its
score equal to nDCG@10 of the reranked candidates computed here, a variant of its own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.callbacks.profiler import Profiler
from evalkit.rerank import RerankConfig, Reranker
from evalkit.rerank import qwen3
from evalkit.runner import run
from evalkit.variants import variant_of
from tests.fixtures.fake_encoder import fake_stack, fake_vectors
from tests.fixtures.tiny_beir import SUBSETS
from tests.fixtures.tiny_rerankers import tiny_cross_encoder_path, tiny_qwen3_reranker_path  # noqa: F401
from tests.test_runner_fast import fake_job

# The model card's strings, written out (not imported from evalkit)
CARD_PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
               "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_DEFAULT = "Given a web search query, retrieve relevant passages that answer the query"


def rerank_cfg(path, backend: str, top_k: int = 3, **kw) -> RerankConfig:
    return RerankConfig(name=f"tiny_{backend}", backend=backend, model_id=str(path), top_k=top_k, dtype="float32",
                        device="cpu", **kw)


def test_qwen3_prompt_is_the_model_cards(tiny_qwen3_reranker_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen3_reranker_path)
    text = qwen3.format_pair(None, "合同的效力?", "第一条 合同 自成立时生效。")
    assert text == f"<Instruct>: {CARD_DEFAULT}\n<Query>: 合同的效力?\n<Document>: 第一条 合同 自成立时生效。"
    (ids,) = qwen3.pair_ids(tok, [text])
    assert tok.decode(ids) == CARD_PREFIX + text + CARD_SUFFIX
    assert ids[-5:] == tok.encode("\n<think>\n\n</think>\n\n", add_special_tokens=False)[-5:]
    (cut,) = qwen3.pair_ids(tok, [qwen3.format_pair("find it", "q", "long document " * 200)], max_length=120)
    assert len(cut) == 120 and tok.decode(cut).endswith(CARD_SUFFIX) and tok.decode(cut).startswith(CARD_PREFIX)


def test_yes_no_scoring_on_fixed_logits():
    import torch

    logits = torch.tensor([[0.0, 2.0, -1.0, 0.5], [3.0, -2.0, 1.0, 1.0], [0.0, 0.0, 7.0, 7.0]])
    yes, no = 3, 1
    expected = [math.exp(r[yes]) / (math.exp(r[yes]) + math.exp(r[no])) for r in logits.tolist()]
    np.testing.assert_allclose(qwen3.yes_probability(logits, yes, no).numpy(), expected, rtol=1e-6)
    bf16 = qwen3.yes_probability(logits.bfloat16(), yes, no)
    assert bf16.dtype == torch.float32  # the softmax in float32, as the card's code upcasts


def test_qwen3_scores_equal_mtebs_wrapper(tiny_qwen3_reranker_path):
    from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper

    queries, docs = ["what is bm25", "合同的效力", "read a csv"], ["bm25 ranks documents", "合同自成立时生效", "x " * 50]
    ours = Reranker(rerank_cfg(tiny_qwen3_reranker_path, "qwen3", batch_size=2)).model()
    theirs = Qwen3RerankerWrapper(str(tiny_qwen3_reranker_path), device="cpu")
    instruction = "Given a query, find the passage"
    expected = theirs.compute_logits(theirs.process_inputs([qwen3.format_pair(instruction, q, d) for q, d in zip(queries, docs)]))
    np.testing.assert_allclose(ours.score(queries, docs, instruction), expected, rtol=1e-4, atol=1e-6)


def reranked_ndcg10(score_pairs, top_k: int) -> float:
    """nDCG@10 of the tiny task (mean over subsets) after reranking the fake encoder's top_k by ``score_pairs``."""
    means = []
    for subset in SUBSETS.values():
        doc_ids, texts = [d for d, _ in subset["corpus"]], [t for _, t in subset["corpus"]]
        docs, rel = fake_vectors(texts), {q: d for q, d, _ in subset["qrels"]}
        per_query = []
        for qid, query in subset["queries"]:
            first = np.argsort(-(docs @ fake_vectors([query])[0]), kind="stable")[:top_k]
            scores = score_pairs([query] * len(first), [texts[i] for i in first])
            order = [doc_ids[first[i]] for i in np.argsort(-np.asarray(scores), kind="stable")]
            per_query.append(1 / math.log2(order.index(rel[qid]) + 2) if rel[qid] in order else 0.0)
        means.append(np.mean(per_query))
    return float(np.mean(means))


@pytest.mark.parametrize("backend", ["cross_encoder", "qwen3"])
def test_reranked_run_reads_the_first_stage_from_the_cache(backend, tmp_path, tiny_beir_spec, tiny_cross_encoder_path,
                                                           tiny_qwen3_reranker_path):
    path = tiny_cross_encoder_path if backend == "cross_encoder" else tiny_qwen3_reranker_path
    first_job = fake_job(tmp_path, tiny_beir_spec)
    (first,) = run(first_job, [], stack=fake_stack())
    built = []
    job = first_job.model_copy(update={"rerank": rerank_cfg(path, backend)})
    (reranked,) = run(job, [Profiler(print_table=False)], stack=fake_stack(built))
    assert reranked.status == "ok", reranked.error
    assert not any(e.calls for e in built)  # every first-stage vector came from the cache (the model never loads)
    block = reranked.result.evalkit
    assert block.encode["cache_hits"] > 0 and block.encode["cache_misses"] == 0
    assert block.extra["rerank"]["first_stage"]["main_score"] == pytest.approx(first.main_score, abs=1e-6)
    assert block.model.variant == "fake » tiny_" + backend + "@3" and block.model.variant_id != "fake"
    assert block.config_hash != first.result.evalkit.config_hash and block.items_file
    model = Reranker(job.rerank).model()
    expected = reranked_ndcg10(lambda q, d: model.score(q, d, None), top_k=3)
    assert reranked.main_score == pytest.approx(expected, abs=1e-5)
    assert expected != pytest.approx(first.main_score, abs=1e-6)  # the stage changed the order
    stage = block.profile["stages"]["rerank"]
    assert stage["items"] == 3 * (5 + 3) and stage["seconds"] > 0  # top_k pairs for each of 8 queries


def test_reranked_variant_names_the_stage(tmp_path, tiny_beir_spec):
    job = fake_job(tmp_path, tiny_beir_spec)
    cfg = RerankConfig(name="qwen3_reranker_0_6b", backend="qwen3", model_id="Qwen/Qwen3-Reranker-0.6B",
                       revision="6e9e69830b95c52b5fd889b7690dda3329508de3")
    a = variant_of(job.model_copy(update={"rerank": cfg}))
    b = variant_of(job.model_copy(update={"rerank": cfg.model_copy(update={"top_k": 20})}))
    c = variant_of(job.model_copy(update={"rerank": cfg.model_copy(update={"max_length": 512})}))
    assert a.label == "fake » qwen3_reranker_0_6b@100" and b.label == "fake » qwen3_reranker_0_6b@20"
    assert c.label == "fake » qwen3_reranker_0_6b@100 · max_length=512"
    assert len({a.id, b.id, c.id, variant_of(job).id}) == 4
