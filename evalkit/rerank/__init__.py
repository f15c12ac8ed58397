"""The reranking stage (``rerank=<name>``): the first stage's best ``top_k`` documents per query,
reordered by a cross-encoder, scored by mteb's own reranking path.

A retrieval task (``evalkit.tasks.mteb_task``) first runs the embedding model as usual — its
vectors from the embedding cache when they are there — and keeps mteb's prediction file; then
``task.convert_to_reranking(predictions, top_k)`` makes the same task a reranking task (mteb's
``top_ranked``), and ``mteb.evaluate`` scores :class:`Reranker`'s ``for_task`` model on it
through its ``CrossEncoderProtocol`` (``predict`` over query and document loaders). The metrics
and the per-query items are mteb's, of the reranked order.

Backends (``rerank.backend``): ``cross_encoder`` (sentence-transformers ``CrossEncoder``) and
``qwen3`` (Qwen3-Reranker, the model card's template; ``evalkit.rerank.qwen3``). The model loads
on first use; its load and scoring time go to the callbacks' ``on_stage`` (the profiler).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from evalkit.rerank.config import RerankConfig

__all__ = ["RerankConfig", "Reranker"]


def _load(cfg: RerankConfig):
    if cfg.backend == "qwen3":
        from evalkit.rerank.qwen3 import Qwen3Reranker

        return Qwen3Reranker(cfg)
    from evalkit.rerank.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(cfg)


class Reranker:
    """The stage of one job: the config, the model (loaded once, on first use), the hooks."""

    def __init__(self, cfg: RerankConfig, hooks: Any = None):
        self.cfg, self.hooks = cfg, hooks
        self._model = None

    @property
    def top_k(self) -> int:
        return self.cfg.top_k

    def model(self):
        if self._model is None:
            from evalkit.errors import ModelLoadError

            t0 = time.perf_counter()
            try:
                self._model = _load(self.cfg)
            except Exception as exc:
                raise ModelLoadError(f"reranker {self.cfg.name!r} ({self.cfg.model_id}) could not be loaded: "
                                     f"{type(exc).__name__}: {exc}") from exc
            self._stage("rerank_load", time.perf_counter() - t0, 0)
        return self._model

    def for_task(self, task_name: str, instruction: str | None) -> MtebCrossEncoder:
        """mteb's cross-encoder for one task (its query instruction, unless the config sets one)."""
        return MtebCrossEncoder(self, self.cfg.instruction or instruction)

    def describe(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json", exclude={"batch_size", "device"})

    def _stage(self, name: str, seconds: float, items: int) -> None:
        on_stage = getattr(self.hooks, "on_stage", None)
        if on_stage is not None:
            on_stage(name, seconds, items)

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


class MtebCrossEncoder:
    """mteb's ``CrossEncoderProtocol``: ``predict(queries loader, documents loader)`` -> one score a pair."""

    def __init__(self, reranker: Reranker, instruction: str | None):
        from mteb.models.model_meta import ModelMeta

        cfg = reranker.cfg
        self.reranker, self.instruction = reranker, instruction
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={
            "name": cfg.model_id if "/" in cfg.model_id and not cfg.model_id.startswith(("/", ".")) else f"evalkit/{cfg.name}",
            "revision": cfg.revision or "no_revision_available", "model_type": ["cross-encoder"],
        })

    def predict(self, inputs1, inputs2, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs) -> np.ndarray:
        queries = [t for batch in inputs1 for t in batch["text"]]
        docs = [t for batch in inputs2 for t in batch["text"]]
        model = self.reranker.model()
        t0 = time.perf_counter()
        scores = model.score(queries, docs, self.instruction)
        self.reranker._stage("rerank", time.perf_counter() - t0, len(queries))
        if not np.isfinite(scores).all():
            raise ValueError(f"reranker {self.reranker.cfg.name!r} gave non-finite scores")
        return scores
