"""Quality by evidence depth: where in its relevant document a query's evidence sits, in the
*evaluated model's own* tokens (issue 21).

A task whose queries carry evidence positions (``"evidence"`` in queries.jsonl: a character
span of a relevant document; zh_longdoc's subsets) gets, beside the by-document-length buckets,
each query's score bucketed by its evidence depth: the tokens the model reads before the
evidence — the document as the model sees it (title and text joined as mteb joins them, the
backend's document prefix), its leading special tokens not counted. The prefix before the
evidence is tokenised on its own, so a BPE merge across the cut can move a depth by a token.
A query with several positions counts at its shallowest.

Weights are those of the task score (``1 / (subsets x queries of its subset)``, as in
:mod:`evalkit.tasks.by_length`), so when every query has a position the buckets' weighted mean
is the task score. Each bucket's interval is a stratified bootstrap (evalkit.stats): queries
resampled within each subset, the subsets weighted as in the bucket's score.

Out of reach: ``beyond_window`` counts the queries whose evidence starts past the model's
window (``max_length``: what truncation cuts); ``beyond_reach`` those this run's encoding never
saw — the same under truncation, none under ``encode.long_docs=chunk``, whose windows cover
every token of a document (evalkit caps neither their number nor a document's length).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evalkit.stats.bootstrap import stratified_bootstrap
from evalkit.stats.scores import DEFAULT_RESAMPLES
from evalkit.tasks.by_length import BUCKETS, bucket_of

# {subset: {query id: [(document id, start char, end char), …]}}
Positions = dict[str, dict[str, list[tuple[str, int, int]]]]


def evidence_prefixes(mteb_task, positions: Positions) -> tuple[list[tuple[str, str]], list[str]]:
    """(subset, query) owners and the document text before each evidence span, as the model
    is given the document (``title + " " + text`` when there is a title, as mteb joins them)."""
    owners, prefixes = [], []
    for subset, by_query in positions.items():
        for split in mteb_task.eval_splits:
            data = mteb_task.dataset[subset][split]
            corpus = data["corpus"]
            titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
            docs = {d: (t, x) for d, t, x in zip(corpus["id"], titles, corpus["text"])}
            asked = set(data["queries"]["id"])
            for qid, spans in by_query.items():
                if qid not in asked:  # left out by task.limit
                    continue
                for doc, start, _ in spans:
                    title, text = docs[doc]
                    owners.append((subset, qid))
                    prefixes.append((f"{title} " if title else "") + text[:start])
    return owners, prefixes


def evidence_depths(mteb_task, positions: Positions, count: Callable[[list[str]], list[int]]) -> dict[str, dict[str, int]]:
    """{subset: {query: tokens before its evidence}}; ``count`` maps prefixes to tokens."""
    owners, prefixes = evidence_prefixes(mteb_task, positions)
    out: dict[str, dict[str, int]] = {}
    for (subset, qid), n in zip(owners, count(prefixes) if prefixes else []):
        by_query = out.setdefault(subset, {})
        by_query[qid] = min(int(n), by_query.get(qid, 1 << 62))
    return out


def _bucket_ci(parts: list[tuple[np.ndarray, float]], point: float, n_resamples: int) -> tuple[float, float] | None:
    """Bootstrap CI of ``sum_k a_k mean(values_k)`` (parts: (values_k, a_k), a summing to 1)."""
    scale = len(parts)  # stratified_bootstrap averages over the subsets: undo it, then weight

    def subset_stat(k, idx):
        values, share = parts[k]
        return scale * share * values[idx].mean(axis=-1)

    return stratified_bootstrap([len(v) for v, _ in parts], subset_stat, point, 0.95, n_resamples, 0, "percentile")


def by_depth(items, depths: dict[str, dict[str, int]], window: int | None, *, chunked: bool,
             n_resamples: int = DEFAULT_RESAMPLES) -> dict:
    """Buckets of per-query scores by evidence depth (see the module docstring).

    ``window``: the tokens before the evidence that still let it be read under truncation
    (None: unknown); ``chunked``: this run read every token (encode.long_docs=chunk)."""
    reach = None if chunked else window
    n_subsets = len(items.subsets)
    rows: dict[str, list] = {label: [] for *_, label in BUCKETS}  # (subset index, value, weight, depth)
    without = 0
    for k, sub in enumerate(items.subsets):
        by_query = depths.get(sub.subset, {})
        w = 1.0 / (n_subsets * len(sub.ids))
        for qid, value in zip(sub.ids, sub.main_values()):
            if qid not in by_query:
                without += 1
                continue
            rows[bucket_of(by_query[qid])].append((k, float(value), w, by_query[qid]))
    buckets = [_bucket(label, rows[label], window, reach, chunked, n_resamples) for *_, label in BUCKETS]
    # the same per subset (a subset's own score by depth; weights as in that subset's score)
    per_subset = {sub.subset: [_bucket(label, [(0, v, w * n_subsets, d) for k_, v, w, d in rows[label] if k_ == k],
                                       window, reach, chunked, n_resamples) for *_, label in BUCKETS]
                  for k, sub in enumerate(items.subsets) if sub.subset in depths} if n_subsets > 1 else {}
    return {"metric": items.main_metric, "window": window, "reach": reach, "queries_without_position": without,
            "rule": "tokens of the document before the query's evidence, in the model's own tokens (the shallowest)",
            "buckets": buckets, "subsets": per_subset}


def _bucket(label: str, rows: list, window: int | None, reach: int | None, chunked: bool, n_resamples: int) -> dict:
    out = {"bucket": label, "queries": len(rows), "weight": sum(r[2] for r in rows), "score": None, "ci_low": None,
           "ci_high": None, "beyond_window": None if window is None else sum(r[3] >= window for r in rows),
           "beyond_reach": 0 if chunked else None if reach is None else sum(r[3] >= reach for r in rows)}
    if not rows:
        return out
    out["score"] = sum(r[1] * r[2] for r in rows) / out["weight"]
    parts = []
    for k in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == k]
        parts.append((np.asarray([r[1] for r in mine]), sum(r[2] for r in mine) / out["weight"]))
    ci = _bucket_ci(parts, out["score"], n_resamples)
    if ci is not None:
        out["ci_low"], out["ci_high"] = ci
    return out
