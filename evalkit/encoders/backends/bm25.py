"""``backend: bm25``: the lexical baseline as a model (``model=bm25``), a row like any other.

BM25 makes no vectors: it ranks documents for queries. mteb takes it through its search
protocol (``index`` the corpus, then ``search`` the queries — mteb's own bm25s baseline does the
same), scores the ranking with its retrieval evaluator and writes the per-query predictions
evalkit's items come from, so paired tests against dense models work as for any two models.
The stack hands retrieval tasks :func:`search_model` as its ``search``; any other task type
asks for vectors and gets a clear error.

Tokens and index are ``evalkit.lexical``'s, shared with the data cards' lexical baseline: on
the same data ``model=bm25`` scores what ``python -m evalkit.data info`` prints.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from evalkit import lexical
from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks
from evalkit.encoders.config import ModelBase

log = logging.getLogger("evalkit.encoders")
IN_WORKERS = False  # nothing to parallelise: no model


class Config(ModelBase):
    """``backend: bm25``: Okapi BM25 over evalkit's lexical tokens (bm25s)."""

    backend: Literal["bm25"] = "bm25"
    k1: float = Field(lexical.K1, ge=0)
    b: float = Field(lexical.B, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = lexical.METHOD

    @property
    def model_ref(self) -> str:
        return "bm25s"


class LexicalModel:
    """The bottom of a bm25 stack: identity and settings; :func:`search_model` does the work."""

    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS):
        import bm25s

        self.cfg, self.hooks = cfg, hooks
        self.meta = EncoderMeta(name=cfg.name, model_id="bm25s", revision=cfg.revision, backend="bm25",
                                dim=None, max_tokens=None, pooling=None, dtype=None, device="cpu", normalize=False,
                                similarity="bm25", parameters=0,
                                extra={"bm25s": bm25s.__version__, "k1": cfg.k1, "b": cfg.b, "method": cfg.method,
                                       "tokens": "evalkit.lexical (CJK characters + bigrams, identifier parts)"})

    def encode(self, texts, *, role, instruction=None):
        raise ValueError(f"model {self.cfg.name!r} is BM25, a lexical retrieval model: it ranks documents for "
                         "queries (retrieval tasks) and makes no vectors for other task types")

    def tokenizer_view(self):
        return None

    def describe(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def build(cfg: Config, hooks: Hooks = NO_HOOKS, batching=None) -> LexicalModel:
    return LexicalModel(cfg, hooks)


def search_model(model: LexicalModel, adapter, instruction: str | None) -> BM25Search:
    """What a retrieval task searches with (the stack's ``search``)."""
    return BM25Search(model.cfg, adapter.mteb_model_meta)


class BM25Search:
    """mteb's search protocol over :class:`evalkit.lexical.BM25Index`: only documents sharing a
    token with the query are retrieved (a score of 0 is no match), best first, at most ``top_k``."""

    def __init__(self, cfg: Config, mteb_model_meta):
        self.cfg, self.mteb_model_meta = cfg, mteb_model_meta
        self._index: lexical.BM25Index | None = None
        self._ids: list[str] = []

    def index(self, corpus, *, task_metadata, hf_split, hf_subset, encode_kwargs=None, num_proc=None, **kwargs):
        from evalkit.encoders.mteb_adapter import corpus_texts

        self._ids = list(corpus["id"])
        self._index = lexical.BM25Index([lexical.tokens(t) for t in corpus_texts(corpus)],
                                        k1=self.cfg.k1, b=self.cfg.b, method=self.cfg.method)

    def search(self, queries, *, task_metadata, hf_split, hf_subset, top_k, encode_kwargs=None, top_ranked=None,
               num_proc=None, **kwargs):
        if self._index is None:
            raise ValueError("BM25Search.search before index")
        results = {}
        for qid, text in zip(queries["id"], queries["text"]):
            hits = self._index.top(lexical.tokens(text), top_k)
            allowed = set(top_ranked[qid]) if top_ranked and qid in top_ranked else None
            results[qid] = {self._ids[i]: s for i, s in hits if allowed is None or self._ids[i] in allowed}
        return results
