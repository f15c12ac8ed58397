"""Lexical matching, one implementation: the tokens BM25 sees and the BM25 index over them.

Used by the ``bm25`` model (``evalkit.encoders.backends.bm25``: a row on the leaderboard) and
by the data cards' lexical baseline (``evalkit.data.stats``), so the two give the same figure
on the same data.

Tokens, for Chinese, code-switched text and code alike:

* CJK characters as unigrams, plus the bigram of every two adjacent characters of a run
  (Chinese has no spaces; bigrams carry most of a word's meaning, as in Lucene's CJK analyzer);
* Latin words and identifiers split into their parts, lower-cased: ``read_csv`` -> read, csv;
  ``HTTPServer`` -> http, server; ``getValue2`` -> get, value2.

Scoring is ``bm25s`` (the library mteb's own BM25 baseline uses), Lucene's variant by default.
"""

from __future__ import annotations

import re

import numpy as np

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[A-Za-z0-9_]+|[{_CJK}]+")
# the parts of an identifier: an upper-case run before a capitalised word (HTTP|Server), a
# capitalised or lower-case word, or an upper-case run, each with the digits that follow it
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")

K1, B, METHOD = 1.2, 0.75, "lucene"  # the data cards' settings; conf/model/bm25.yaml says the same


def tokens(text: str, *, latin_only: bool = False) -> list[str]:
    """The lexical tokens of ``text``; ``latin_only`` keeps only the Latin ones (what a Chinese
    sentence can share with its English source)."""
    out: list[str] = []
    for run in _RUN.findall(text):
        if run[0].isascii():
            out += [p.lower() for p in _PART.findall(run)]
        elif not latin_only:
            out += list(run) + [a + b for a, b in zip(run, run[1:])]
    return out


class BM25Index:
    """A bm25s index over tokenised documents; ``scores`` for every document, ``top`` for the best."""

    def __init__(self, docs: list[list[str]], *, k1: float = K1, b: float = B, method: str = METHOD):
        import bm25s

        self.n_docs = len(docs)
        self.vocab: dict[str, int] = {}
        ids = [[self.vocab.setdefault(t, len(self.vocab)) for t in doc] for doc in docs]
        self.retriever = bm25s.BM25(k1=k1, b=b, method=method)
        self.retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self.vocab), show_progress=False)

    def query_ids(self, query: list[str]) -> list[int]:
        """A query's known tokens, each once: a repeated query word is not worth twice as much."""
        return list(dict.fromkeys(self.vocab[t] for t in query if t in self.vocab))

    def scores(self, query: list[str]) -> np.ndarray:
        """BM25 score of every document (0 where none of the query's tokens occur)."""
        ids = self.query_ids(query)
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(ids), dtype=np.float32)

    def top(self, query: list[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best (document index, score) pairs that share a token with the query, best first
        (equal scores: the earlier document first)."""
        s = self.scores(query)
        hits = np.flatnonzero(s > 0)
        order = hits[np.lexsort((hits, -s[hits]))][:k]
        return [(int(i), float(s[i])) for i in order]
