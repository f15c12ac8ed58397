"""Quality by document length, and a model's effective context length.

For any retrieval task: each query's score (its per-item value of the main metric) is
bucketed by the length of its relevant document in the *evaluated model's own* tokens (the
longest, when a query has several). Every query weighs what it weighs in the task score —
``1 / (subsets x queries of its subset)`` — so the buckets' weighted mean is the task score
exactly, and a bucket mixing subsets does not let a big subset drown a small one.

Effective context length (LongEmbed-style passkey / needle tasks, one subset per length):
the longest tested length whose score is at least ``EFFECTIVE_SHARE`` (90%) of the score at
the shortest tested length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BUCKETS = ((0, 512, "≤512"), (512, 2048, "512–2k"), (2048, 8192, "2k–8k"), (8192, 32768, "8k–32k"),
           (32768, None, ">32k"))
EFFECTIVE_SHARE = 0.9


def bucket_of(n_tokens: int) -> str:
    for _, high, label in BUCKETS:
        if high is None or n_tokens <= high:
            return label
    raise AssertionError("the last bucket is open")


def document_lengths(mteb_task, count) -> dict[str, dict[str, int]]:
    """{subset: {doc id: tokens}} for every corpus of a loaded retrieval task; ``count`` maps
    texts to token counts (the model's own tokenizer, special tokens included)."""
    from evalkit.encoders.mteb_adapter import corpus_texts

    out = {}
    for subset in mteb_task.hf_subsets:
        for split in mteb_task.eval_splits:
            corpus = mteb_task.dataset[subset][split]["corpus"]
            out[subset] = dict(zip(corpus["id"], count(corpus_texts(corpus))))
    return out


def length_summary(lengths: dict[str, dict[str, int]], max_tokens: int | None) -> dict[str, dict]:
    """Per subset: documents' lengths in the model's tokens and how many exceed its limit."""
    out = {}
    for subset, by_doc in lengths.items():
        v = np.asarray(list(by_doc.values()))
        out[subset] = {"documents": int(v.size), "min": int(v.min()), "median": int(np.median(v)), "max": int(v.max()),
                       "over_max_tokens": int((v > max_tokens).sum()) if max_tokens else None, "max_tokens": max_tokens}
    return out


def by_length(items, qrels: dict[str, dict[str, dict[str, int]]], lengths: dict[str, dict[str, int]]) -> dict:
    """Buckets of per-query scores by relevant-document length (see the module docstring).

    ``items``: the task's TaskItems; ``qrels``: {subset: {query: {doc: relevance}}}.
    """
    n_subsets = len(items.subsets)
    acc: dict[str, dict[str, float]] = {label: {"queries": 0, "weight": 0.0, "weighted": 0.0} for *_, label in BUCKETS}
    for sub in items.subsets:
        values = sub.main_values()
        w = 1.0 / (n_subsets * len(sub.ids))
        for qid, value in zip(sub.ids, values):
            relevant = [d for d, r in qrels[sub.subset][qid].items() if r > 0]
            n = max(lengths[sub.subset][d] for d in relevant)
            b = acc[bucket_of(n)]
            b["queries"] += 1
            b["weight"] += w
            b["weighted"] += w * float(value)
    buckets = [{"bucket": label, "queries": int(b["queries"]), "weight": b["weight"],
                "score": b["weighted"] / b["weight"] if b["weight"] else None} for label, b in acc.items()]
    return {"metric": items.main_metric, "rule": "relevant document's length in the model's tokens (the longest)",
            "buckets": buckets}


def effective_length(scores: dict[int, float], share: float = EFFECTIVE_SHARE) -> int | None:
    """The longest tested length scoring at least ``share`` of the shortest length's score."""
    if not scores:
        return None
    lengths = sorted(scores)
    base = scores[lengths[0]]
    ok = [n for n in lengths if scores[n] >= share * base]
    return max(ok) if base > 0 else None


def length_curve(subset_scores: Sequence[tuple[str, float | None]]) -> dict[int, float] | None:
    """{length: score} when every subset is named by a token length (passkey / needle tasks)."""
    curve = {}
    for name, score in subset_scores:
        if not str(name).isdigit() or score is None:
            return None
        curve[int(name)] = float(score)
    return curve or None
