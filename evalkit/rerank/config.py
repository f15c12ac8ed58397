"""The ``rerank:`` section (``rerank=<name>``, conf/rerank/*.yaml): a second stage that reorders
the first stage's top ``top_k`` documents with a cross-encoder. Torch-free; fields marked
``speed(...)`` never change a score (``evalkit.fields``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evalkit.encoders.config import Dtype
from evalkit.fields import Strict, speed


class RerankConfig(Strict):
    name: str  # the reranked variant is "<first stage> » <name>@<top_k>"
    # cross_encoder: a sentence-transformers CrossEncoder (BERT-style, one relevance logit);
    # qwen3: Qwen3-Reranker, a causal LM asked "yes" or "no" (the model card's template)
    backend: Literal["cross_encoder", "qwen3"]
    model_id: str  # hub id or local folder
    revision: str | None = None  # hub commit of the weights
    top_k: int = Field(100, ge=1)  # the first stage's best documents per query that are reordered
    max_length: int | None = Field(None, ge=8)  # tokens per (query, document) pair; None: the model's own
    # None: the task's query instruction (as for the embedding model), else the model card's default
    instruction: str | None = None
    dtype: Dtype = "auto"
    batch_size: int = speed(32, ge=1)  # pairs per forward pass
    device: str = speed("auto")
