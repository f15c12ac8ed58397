"""The local Qwen3-Embedding path (backend ``hf``) on a tiny random Qwen3 with a real tokenizer.

Every expected value is computed independently here (plain transformers, one text at a
time, numpy pooling), never hard-coded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evalkit.encoders.base import BatchReport, Role
from evalkit.encoders.backends.hf import Config, build
from evalkit.encoders.batching import Batching
from evalkit.errors import ConfigError
from tests.fixtures.tiny_qwen3 import EOS, raw_data_dir, tiny_qwen3_path  # noqa: F401  (fixture)

INSTRUCTION = "Given a legal question, retrieve the article that answers it"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real mixed texts of very different lengths: statutes, code, English queries."""
    raw = raw_data_dir()
    law = sorted((raw / "laws").rglob("*.md"))[10].read_text(encoding="utf-8")
    lines = [ln.strip() for ln in law.splitlines() if len(ln.strip()) > 10][:6]
    cosqa = json.loads((raw / "cosqa" / "cosqa-retrieval-test-500.json").read_text(encoding="utf-8"))
    return lines + [r["doc"] for r in cosqa[:5]] + [r["code"] for r in cosqa[:5]]


class Recorder:
    def __init__(self):
        self.reports: list[BatchReport] = []

    def on_batch_end(self, report: BatchReport) -> None:
        self.reports.append(report)


def make(path, **overrides):
    hooks = Recorder()
    cfg = Config(name="tiny_qwen3", model_id=str(path), device="cpu", **overrides)
    return build(cfg, hooks), hooks


@pytest.fixture(scope="module")
def encoder(tiny_qwen3_path):
    enc, _ = make(tiny_qwen3_path, batch_size=4)
    return enc


def reference_vectors(path, texts: list[str]) -> np.ndarray:
    """Independent computation: plain transformers, one text at a time, no padding at all,
    hidden state of the final (EOS) token, L2-normalised in numpy."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    for text in texts:
        ids = tok(text)["input_ids"]
        assert ids[-1] == tok.convert_tokens_to_ids(EOS), "the tokenizer must append EOS"
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
        vec = hidden[-1].astype(np.float64)
        out.append(vec / np.linalg.norm(vec))
    return np.asarray(out)


def test_matches_independent_last_token_pooling(tiny_qwen3_path, encoder, texts):
    got = encoder.encode(texts, role=Role.DOCUMENT)
    want = reference_vectors(tiny_qwen3_path, texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-5)


def padded_batch(enc, texts):
    """The tensors the forward pass gets: our ids, padded by the tokenizer."""
    ids = [enc.view.with_specials(c) for c in enc.view.encode(texts)]
    return enc.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")


def test_tokenise_once_ids_are_transformers_own(tiny_qwen3_path, encoder, texts):
    """The ids computed once for lengths are exactly what the tokenizer gives with truncation."""
    assert encoder.fast_ids
    for limit in (8, 32, 8192):
        ours = [encoder.view.with_specials(c, limit) for c in encoder.view.encode(texts)]
        assert ours == encoder.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]


def test_left_and_right_padding_give_the_same_vectors(tiny_qwen3_path, encoder, texts):
    right, _ = make(tiny_qwen3_path, batch_size=4, padding_side="right")
    assert encoder.tokenizer.padding_side == "left"
    batch = padded_batch(encoder, texts[:4])
    eos = encoder.eos_id
    # left padding: every row ends in EOS, so position -1 is the pooled token
    assert (batch["input_ids"][:, -1] == eos).all()
    assert (batch["attention_mask"][:, 0] == 0).any(), "texts of different lengths must need padding"
    np.testing.assert_allclose(
        encoder.encode(texts, role=Role.DOCUMENT), right.encode(texts, role=Role.DOCUMENT), atol=2e-5
    )


def test_queries_carry_the_instruction_and_documents_do_not(encoder, texts):
    q = encoder.prepare(texts[:2], role=Role.QUERY, instruction=INSTRUCTION)
    d = encoder.prepare(texts[:2], role=Role.DOCUMENT, instruction=INSTRUCTION)
    assert q == [f"Instruct: {INSTRUCTION}\nQuery:{t}" for t in texts[:2]]
    assert d == texts[:2]
    # the vectors follow the strings: a query equals the document of its formatted string
    as_query = encoder.encode(texts[:3], role=Role.QUERY, instruction=INSTRUCTION)
    formatted = encoder.encode([f"Instruct: {INSTRUCTION}\nQuery:{t}" for t in texts[:3]], role=Role.DOCUMENT)
    raw = encoder.encode(texts[:3], role=Role.DOCUMENT)
    np.testing.assert_allclose(as_query, formatted, atol=1e-6)
    assert np.abs(as_query - raw).max() > 1e-3
    # no task instruction: queries get the default one; symmetric tasks follow Qwen's
    # evaluation (instruction on both sides when the task has one, raw otherwise)
    assert encoder.prepare(["x"], role=Role.QUERY)[0].startswith("Instruct: Given a web search query")
    assert encoder.prepare(["x"], role=Role.SYMMETRIC, instruction="Retrieve semantically similar text.") == [
        "Instruct: Retrieve semantically similar text.\nQuery:x"
    ]
    assert encoder.prepare(["x"], role=Role.SYMMETRIC) == ["x"]


def test_batched_and_one_by_one_agree(tiny_qwen3_path, encoder, texts):
    single, _ = make(tiny_qwen3_path, batch_size=1)
    single.batching = Batching(max_batch_texts=1)  # one text per forward pass, whatever the token budget
    np.testing.assert_allclose(
        encoder.encode(texts, role=Role.QUERY, instruction=INSTRUCTION),
        single.encode(texts, role=Role.QUERY, instruction=INSTRUCTION),
        atol=2e-5,
    )


def test_matryoshka_dimension_gives_renormalised_prefixes(tiny_qwen3_path, encoder, texts):
    small, _ = make(tiny_qwen3_path, dimension=16)
    assert small.meta.dim == 16
    full = encoder.encode(texts, role=Role.DOCUMENT)
    cut = small.encode(texts, role=Role.DOCUMENT)
    assert cut.shape == (len(texts), 16)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)
    prefix = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(cut, prefix, atol=1e-5)


def test_truncation_keeps_eos_and_is_reported(tiny_qwen3_path, texts):
    enc, hooks = make(tiny_qwen3_path, max_length=32, batch_size=16)
    enc.batching = Batching(min_efficiency=0.0)  # one batch of all 16 texts, padding and all
    lengths = enc.view.lengths(texts)
    assert max(lengths) > 32, "some test texts must be longer than max_length"
    enc.encode(texts, role=Role.DOCUMENT)
    batch = padded_batch(enc, texts)
    assert batch["input_ids"].shape[1] == 32 and (batch["input_ids"][:, -1] == enc.eos_id).all()
    (report,) = hooks.reports  # budget batch_size x max_length = 16 x 32 holds all 16 truncated texts
    assert report.n_texts == len(texts) and not report.remote
    assert report.truncated_texts == sum(n > 32 for n in lengths)
    assert report.tokens_cut == sum(max(0, n - 32) for n in lengths)
    assert report.real_tokens == sum(min(n, 32) for n in lengths)
    assert report.padded_tokens == len(texts) * 32
    # truncated vectors are the vectors of the kept prefix (+ EOS), computed independently
    ids = enc.tokenizer(texts[-1], add_special_tokens=False)["input_ids"][:31]
    kept_text = enc.tokenizer.decode(ids)
    np.testing.assert_allclose(
        enc.encode([texts[-1]], role=Role.DOCUMENT), reference_vectors(tiny_qwen3_path, [kept_text]), atol=2e-5
    )


def test_long_inputs_up_to_the_context(tiny_qwen3_path, texts):
    """A statute of a few thousand tokens runs whole (no silent 512-token cut)."""
    raw = raw_data_dir()
    law = max(sorted((raw / "laws").rglob("*.md"))[:40], key=lambda p: p.stat().st_size).read_text(encoding="utf-8")
    law = law[:6000]  # ~4k tokens: long enough to prove the point, short enough for 2 CPU cores
    enc, hooks = make(tiny_qwen3_path, batch_size=1)  # default max_length 8192
    (n,) = enc.view.lengths([law])
    assert 2048 < n <= 8192
    vec = enc.encode([law], role=Role.DOCUMENT)
    assert np.isfinite(vec).all() and hooks.reports[0].real_tokens == n and hooks.reports[0].truncated_texts == 0


def test_config_errors_are_clear(tiny_qwen3_path):
    with pytest.raises(ConfigError, match="exceeds the model's hidden size 64"):
        make(tiny_qwen3_path, dimension=65)
    with pytest.raises(ValueError, match="max_length"):
        Config(name="x", model_id=str(tiny_qwen3_path), max_length=40000)
    with pytest.raises(ValueError, match="extra"):
        Config(name="x", model_id=str(tiny_qwen3_path), pooling="mean")
