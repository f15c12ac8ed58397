"""MaxP search for chunked long documents (``encode.chunk_pooling=maxp``, retrieval tasks).

A document longer than the model's window is cut into windows (``evalkit.encoders.layers.chunking``) and
scored by its *best* window: ``score(q, d) = max_i sim(q, window_i)`` — BERT-MaxP (Dai &
Callan, SIGIR 2019), what chunked RAG retrieval does in practice. Pooling the windows into one
vector instead (mean / max) dilutes a detail that sits in one window by the number of
windows, so a passkey deep in a 30-window document is lost again.

mteb takes it as a search model (its ``SearchProtocol``: ``index`` then ``search``) and scores
the ranking with its own evaluator, as for any model. Documents that fit one window get
exactly the plain dense score. The builder hands it to retrieval tasks as the stack's
``search`` (``search(adapter, instruction)``), with the chunking layer it searches through.
"""

from __future__ import annotations

import numpy as np

from evalkit.encoders.base import Role, collect, encode_iter
from evalkit.encoders.layers.top_k import best_documents


class MaxPSearch:
    def __init__(self, adapter, chunker, instruction: str | None):
        self.adapter, self.chunker, self.instruction = adapter, chunker, instruction
        self.mteb_model_meta = adapter.mteb_model_meta
        self._windows = self._starts = self._ids = None

    def index(self, corpus, *, task_metadata, hf_split, hf_subset, encode_kwargs=None, num_proc=None, **kwargs):
        from evalkit.encoders.mteb_adapter import corpus_texts

        texts = corpus_texts(corpus)
        pieces, owner = self.chunker.split(texts, self.chunker.window_for(Role.DOCUMENT, self.instruction))
        # the windows go through the stack below the chunker: cached, deduplicated, batched
        self._windows = collect(encode_iter(self.chunker.inner, pieces, role=Role.DOCUMENT,
                                            instruction=self.instruction), len(pieces), self.chunker.meta.dim)
        owner = np.asarray(owner)
        self._starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # pieces of a text are contiguous
        self._ids = list(corpus["id"])

    def search(self, queries, *, task_metadata, hf_split, hf_subset, top_k, encode_kwargs=None, top_ranked=None,
               num_proc=None, **kwargs):
        if self._windows is None:
            raise ValueError("MaxPSearch.search before index")
        q = self.chunker.encode(list(queries["text"]), role=Role.QUERY, instruction=self.instruction)
        starts = self._starts  # a document's score is its best window's
        return best_documents(q, queries["id"], self._windows, self._ids, self.adapter.similarity, top_k,
                              per_doc=lambda sims: np.maximum.reduceat(sims, starts, axis=1))
