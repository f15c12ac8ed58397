"""Per-item scores from mteb's own prediction files (``mteb.evaluate(prediction_folder=…)``).

The predictions are what mteb scored; the per-item values are computed with the same
functions mteb uses, so their means equal mteb's aggregate (tests check 1e-6):

* Retrieval: the ranked results per query -> mteb's ``calculate_retrieval_scores``
  (pytrec_eval) per query: nDCG/recall/MAP/precision at the usual cut-offs, MRR, top-10 ids.
* STS: predicted similarity per pair and the gold score; the subset score is Spearman, and
  the stored ``contribution`` column (z-scored ranks multiplied) has Spearman as its mean.
* Bitext mining: the nearest neighbour per sentence; ``correct`` per sentence, and each
  sentence's F1 term (weighted F1 over classes of support 1 is the mean of per-class F1).
* Classification (accuracy): per test item, the share of mteb's experiments that got it right.

A task type or main metric without such a decomposition yields no items (CIs then say
"not available"); scores are never affected.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from evalkit.results.items import SubsetItems
from evalkit.stats import spearman_contributions

log = logging.getLogger("evalkit.tasks")

CUTOFFS = (1, 5, 10, 100)
_PYTREC = {"ndcg_at": "ndcg_cut_", "recall_at": "recall_", "map_at": "map_cut_", "precision_at": "P_",
           "hit_rate_at": "success_"}


def _split_data(task, subset: str, split: str):
    """mteb keeps multi-subset data as dataset[subset][split], single-subset data as dataset[split]."""
    data = task.dataset
    try:
        return data[subset][split]
    except (KeyError, TypeError):
        return data[split]


def subset_items(task, subset: str, split: str, predictions: Any, main_metric: str) -> SubsetItems | None:
    kind = task.metadata.type
    if kind == "Retrieval":
        return _retrieval(task, subset, split, predictions, main_metric)
    if kind == "STS":
        return _sts(task, subset, split, predictions, main_metric)
    if kind == "BitextMining":
        return _bitext(task, subset, split, predictions, main_metric)
    if kind == "Classification" and main_metric == "accuracy":
        return _classification(task, subset, split, predictions)
    return None


def _retrieval(task, subset, split, results: dict, main_metric: str) -> SubsetItems | None:
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores, mrr

    qrels = _split_data(task, subset, split)["relevant_docs"]
    results = {q: dict(docs) for q, docs in results.items()}
    if getattr(task, "ignore_identical_ids", False):
        results = {q: {d: s for d, s in docs.items() if d != q} for q, docs in results.items()}
    k_values = sorted(set(CUTOFFS) | {int(k) for k in re.findall(r"_at_(\d+)$", main_metric)})
    skip_first = getattr(task, "skip_first_result", False)
    per_query = calculate_retrieval_scores(results, qrels, k_values, skip_first).all_scores
    ids = sorted(per_query)
    columns: dict[str, list[float]] = {}
    for prefix, key in _PYTREC.items():
        for k in k_values:
            if f"{key}{k}" in per_query[ids[0]]:
                columns[f"{prefix}_{k}"] = [float(per_query[q][f"{key}{k}"]) for q in ids]
    if main_metric.startswith("mrr_at_"):
        ranked = {q: results.get(q, {}) for q in ids}
        values = mrr({q: qrels[q] for q in ids}, ranked, k_values)
        k = int(main_metric.rsplit("_", 1)[1])
        columns[main_metric] = [float(v) for v in values[f"MRR@{k}"]]
    if main_metric not in columns:
        log.info("%s: no per-query values for main metric %s", task.metadata.name, main_metric)
        return None
    top = [[d for d, _ in sorted(results.get(q, {}).items(), key=lambda x: -x[1])[:10]] for q in ids]
    return SubsetItems(split=split, subset=subset, ids=ids, main=main_metric, columns=columns, extra={"top10": top})


_STS_COLUMN = {"cosine_spearman": "cosine_scores", "manhattan_spearman": "manhattan_distances",
               "euclidean_spearman": "euclidean_distances", "spearman": "similarity_scores"}


def _sts(task, subset, split, scores: dict, main_metric: str) -> SubsetItems | None:
    column = _STS_COLUMN.get(main_metric)
    if column == "similarity_scores" and scores.get(column) is None:
        column = "cosine_scores"  # mteb's fallback when the model has no similarity function
    if column is None or scores.get(column) is None:
        return None
    pred = np.asarray(scores[column], dtype=np.float64)
    gold = np.asarray(_split_data(task, subset, split)["score"], dtype=np.float64)
    ids = [str(i) for i in range(len(pred))]
    return SubsetItems(
        split=split, subset=subset, ids=ids, main="contribution", kind="spearman",
        columns={"contribution": spearman_contributions(pred, gold).tolist(), "predicted": pred.tolist(),
                 "gold": gold.tolist()},
    )


def _bitext(task, subset, split, neighbours: dict, main_metric: str) -> SubsetItems | None:
    data = _split_data(task, subset, split)
    if "gold" in getattr(data, "column_names", []) or len(neighbours) != 1:
        return None  # BUCC-style gold lists or parallel subsets: no per-sentence decomposition here
    (nearest,) = neighbours.values()
    pred = np.asarray([x["corpus_id"] for x in nearest])
    n = len(pred)
    correct = pred == np.arange(n)
    # class c (= sentence c) has support 1: F1_c = 2 TP / (2 TP + FP + FN) with FN = 1 - TP
    fp = np.bincount(pred, minlength=n) - correct.astype(int)
    f1 = np.where(correct, 2.0 / (2.0 + fp), 0.0)
    columns = {"accuracy": correct.astype(float).tolist(), "f1": f1.tolist()}
    if main_metric not in columns:
        return None
    ids = [str(i) for i in range(n)]
    return SubsetItems(split=split, subset=subset, ids=ids, main=main_metric, columns=columns,
                       extra={"predicted": pred.tolist()})


def _classification(task, subset, split, experiments: list) -> SubsetItems | None:
    data = _split_data(task, subset, split)
    label_column = getattr(task, "label_column_name", "label")
    labels = np.asarray(data[label_column])
    runs = np.asarray(experiments)
    if runs.ndim != 2 or runs.shape[1] != len(labels):
        return None
    share = (runs == labels[None, :]).mean(axis=0)
    ids = [str(i) for i in range(len(labels))]
    return SubsetItems(split=split, subset=subset, ids=ids, main="accuracy", columns={"accuracy": share.tolist()},
                       extra={"experiments": int(runs.shape[0])})
