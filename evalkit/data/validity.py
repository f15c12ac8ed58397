"""Validity checks of a long-document subset whose queries say where their evidence sits
(``python -m evalkit.data info``): does a bucket of deep evidence measure reading at depth, or
only the document's topic?

Per evidence-depth bucket (Qwen3 reference tokens of the relevant document before the evidence;
the shallowest relevant document when a query has several):

* **BM25** over the full documents: is deep evidence still findable by word overlap?
* **title only**: BM25 over each document cut to its title (the first line of a built document,
  or its ``title`` field) and the first ``TITLE_TOKENS`` reference tokens after it. If this
  scores like the full text at depth, what the bucket measures is the topic a model can read at
  the top of the document, not long context.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.data import beir, stats

TITLE_TOKENS = 64
# the same buckets as quality by document length (evalkit/tasks/by_length.py)
DEPTH_BUCKETS = ((0, 512, "≤512"), (512, 2048, "512–2k"), (2048, 8192, "2k–8k"), (8192, 32768, "8k–32k"),
                 (32768, None, ">32k"))


def depth_bucket(tokens: int) -> str:
    return next(label for _, high, label in DEPTH_BUCKETS if high is None or tokens <= high)


def _tokenizer():
    from evalkit.data.haystack import reference_tokenizer

    return reference_tokenizer()


def evidence_depths(data: beir.RetrievalFiles) -> dict[str, int]:
    """Query id -> reference tokens before its evidence (queries with a position only)."""
    prefixes, owners = [], []
    for qid, entries in data.evidence.items():
        for e in entries:
            title, text = data.corpus[e.doc_id]
            prefixes.append((f"{title} " if title else "") + text[: e.start])
            owners.append(qid)
    out: dict[str, int] = {}
    tok = _tokenizer()
    for i in range(0, len(prefixes), 64):
        for qid, enc in zip(owners[i : i + 64], tok.encode_batch(prefixes[i : i + 64], add_special_tokens=False)):
            out[qid] = min(out.get(qid, 1 << 62), len(enc.ids))
    return out


def title_only(title: str, text: str) -> str:
    """The document's title and its first TITLE_TOKENS reference tokens after the title."""
    if not title:
        title, _, text = text.partition("\n")
    head = text.lstrip()[:4000]  # far more than 64 tokens: only this much is tokenised
    offsets = _tokenizer().encode(head, add_special_tokens=False).offsets
    cut = offsets[min(TITLE_TOKENS, len(offsets)) - 1][1] if offsets else 0
    return f"{title}\n{head[:cut]}"


def bm25_per_query(data: beir.RetrievalFiles, docs: list[str], qids: list[str]) -> np.ndarray:
    """nDCG@10 of BM25 per query (``docs`` in corpus order)."""
    index = {d: i for i, d in enumerate(data.corpus)}
    doc_tokens = [stats.lexical_tokens(t) for t in docs]
    out = []
    for i in range(0, len(qids), 2000):  # bounded memory for many queries
        chunk = qids[i : i + 2000]
        scores = stats.bm25_scores([stats.lexical_tokens(data.queries[q]) for q in chunk], doc_tokens)
        relevant = [{index[d] for d, s in data.qrels[q].items() if s > 0} for q in chunk]
        out.append(stats.ndcg_per_query(scores, relevant, 10))
    return np.concatenate(out) if out else np.zeros(0)


def depth_checks(folder: Path) -> dict | None:
    """{bucket: {queries, bm25_ndcg_at_10, title_only_bm25_ndcg_at_10}}, or None without positions."""
    data = beir.read_retrieval(folder)
    depths = evidence_depths(data)
    if not depths:
        return None
    qids = [q for q in data.queries if q in depths]
    full = bm25_per_query(data, [f"{t} {x}" for t, x in data.corpus.values()], qids)
    short = bm25_per_query(data, [title_only(t, x) for t, x in data.corpus.values()], qids)
    buckets = np.asarray([depth_bucket(depths[q]) for q in qids])
    out = {}
    for _, _, label in DEPTH_BUCKETS:
        mask = buckets == label
        if mask.any():
            out[label] = {"queries": int(mask.sum()), "bm25_ndcg_at_10": round(float(full[mask].mean()), 4),
                          "title_only_bm25_ndcg_at_10": round(float(short[mask].mean()), 4)}
    out["all"] = {"queries": len(qids), "bm25_ndcg_at_10": round(float(full.mean()), 4),
                  "title_only_bm25_ndcg_at_10": round(float(short.mean()), 4)}
    return out


def print_depth_checks(checks: dict | None) -> None:
    if not checks:
        return
    labels = list(checks)
    print("  by evidence depth (Qwen3 tokens before the evidence):")
    print("    " + f"{'':<30}" + "".join(f"{label:>9}" for label in labels))
    for key, name in (("queries", "queries"), ("bm25_ndcg_at_10", "BM25 nDCG@10"),
                      ("title_only_bm25_ndcg_at_10", f"title + {TITLE_TOKENS} tokens, BM25")):
        cells = [f"{checks[b][key]:>9}" if key == "queries" else f"{checks[b][key]:>9.4f}" for b in labels]
        print("    " + f"{name:<30}" + "".join(cells))


def markdown_depth_checks(checks: dict | None) -> list[str]:
    """The depth table as Markdown lines after a blank one (none without checks)."""
    if not checks:
        return []
    labels = list(checks)
    rows = ["| evidence depth (Qwen3 tokens) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels),
            "| queries | " + " | ".join(f"{checks[b]['queries']:,}" for b in labels) + " |",
            "| BM25 nDCG@10 | " + " | ".join(f"{checks[b]['bm25_ndcg_at_10']:.4f}" for b in labels) + " |",
            f"| title + {TITLE_TOKENS} tokens, BM25 nDCG@10 | "
            + " | ".join(f"{checks[b]['title_only_bm25_ndcg_at_10']:.4f}" for b in labels) + " |"]
    return ["", *rows]
