"""The top k documents per query from vectors, a block of queries at a time: the search step
shared by the layers that search for mteb themselves (MaxP over windows, compressed vectors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BLOCK = 256  # queries x the whole corpus at a time: bounded memory


def best_documents(queries: np.ndarray, query_ids: Sequence[str], docs: np.ndarray, doc_ids: Sequence[str],
          similarity: Callable, k: int, per_doc: Callable[[np.ndarray], np.ndarray] | None = None,
          ) -> dict[str, dict[str, float]]:
    """{query id: {doc id: score}} of each query's ``k`` best documents; ``per_doc`` turns a block's
    similarities to ``docs`` rows (e.g. windows) into one score per document."""
    results: dict[str, dict[str, float]] = {}
    for start in range(0, len(queries), BLOCK):
        sims = np.asarray(similarity(queries[start : start + BLOCK], docs), dtype=np.float64)
        scores = per_doc(sims) if per_doc is not None else sims
        kk = min(k, scores.shape[1])
        best = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        for row, qid in enumerate(query_ids[start : start + BLOCK]):
            results[qid] = {doc_ids[j]: float(scores[row, j]) for j in best[row]}
    return results
