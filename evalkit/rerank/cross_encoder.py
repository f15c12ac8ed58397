"""Cross-encoders of sentence-transformers (``CrossEncoder``: BERT-style rerankers such as BAAI's
bge-reranker and jina's rerankers): one relevance score per (query, document) pair, as the model
itself outputs it. Instructions do not apply."""

from __future__ import annotations

import numpy as np


class CrossEncoderReranker:
    def __init__(self, cfg):
        from sentence_transformers import CrossEncoder

        from evalkit.encoders.torch_utils import resolve_device, resolve_dtype

        self.cfg = cfg
        device = resolve_device(cfg.device)
        self.model = CrossEncoder(cfg.model_id, revision=cfg.revision, device=device, max_length=cfg.max_length,
                                  model_kwargs={"dtype": resolve_dtype(cfg.dtype, device)})

    def score(self, queries: list[str], docs: list[str], instruction: str | None) -> np.ndarray:
        if not queries:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(list(zip(queries, docs)), batch_size=self.cfg.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(queries))

    def close(self) -> None:
        self.model = None
