"""Near-copies among statute articles (for ``laws_deep``): an article that another law repeats
(an amendment quoting the article it rewrites, a regulation restating its law, a model clause,
Hong Kong's and Macao's twin laws) has more than one right answer, and a law that has another
version in the corpus is a distractor with the same context around the removed article.

Articles are compared with every other article and with the text of every document outside its
articles (where amendments and revision decisions quote the articles they rewrite:
"将第一百四十三条修改为：“……”"), by their 8-character shingles (punctuation and spaces removed), the usual
text-reuse measure: ``containment(a, b)`` = the share of ``a``'s shingles that ``b`` also has.
Shingles found in more than ``STOCK_DF`` articles are stock phrases of legal drafting ("依法追究
刑事责任"), counted apart: an article made mostly of them is boilerplate. The pairwise counts are
one sparse matrix product over the rarer shingles (a few seconds for the 65k articles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

SHINGLE = 8
STOCK_DF = 50  # a shingle in more articles than this is a stock phrase
SAME_ARTICLE = 0.5  # containment at which two articles are one article (for sibling documents)
SIBLING_SHARE = 0.3  # a document sharing this share of its articles with one other document is its sibling
NON_WORD = re.compile(r"[\W_]+")


@dataclass
class NearCopies:
    containment: np.ndarray  # per article: the highest containment in any other article
    stock_share: np.ndarray  # per article: share of its shingles that are stock phrases
    docs_with_sibling: set[int]  # documents with a version / twin in the corpus


def shingle_matrix(bodies: list[str]):
    """Sparse 0/1 matrix (articles x distinct shingles). Shingles are hashed (a polynomial hash of
    the code points, wrapping at 2**64, computed for all articles at once), not stored."""
    from scipy.sparse import csr_matrix

    flat = [NON_WORD.sub("", b) for b in bodies]
    lengths = np.asarray([len(f) for f in flat])
    codes = np.frombuffer("".join(flat).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(bodies)), lengths)
    n = max(0, len(codes) - SHINGLE + 1)
    hashes = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(SHINGLE):
            hashes = hashes * np.uint64(1_000_003) + codes[k : k + n]
    inside = owner[:n] == owner[SHINGLE - 1 : SHINGLE - 1 + n]  # windows within one article
    cols = _dense_ids(hashes[inside])
    n_cols = int(cols.max()) + 1 if len(cols) else 1
    keys = np.sort(owner[:n][inside] * n_cols + cols, kind="stable")
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]  # each shingle once per article
    rows, cols = np.divmod(keys, n_cols)
    return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(bodies), n_cols))


def _dense_ids(values: np.ndarray) -> np.ndarray:
    """0..k-1 per distinct value (np.unique's inverse, by a sort: np.unique is far slower here)."""
    order = np.argsort(values)
    ordered = values[order]
    ids = np.empty(len(values), dtype=np.int64)
    ids[order] = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
    return ids


def near_copies(bodies: list[str], doc_of: list[int], others: list[str] = ()) -> NearCopies:
    """Compare every article with every other (same document or not) and with ``others`` (text
    outside articles, one string per document). An article shorter than one shingle has none:
    it is never a near-copy (``laws_deep`` drops short articles anyway)."""
    n = len(bodies)
    x = shingle_matrix(list(bodies) + list(others))
    df = np.asarray(x.sum(axis=0)).ravel()
    size = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1)[:n]
    stock = np.asarray(x[:n, df > STOCK_DF].sum(axis=1)).ravel() / size
    rare = x[:, np.flatnonzero(df <= STOCK_DF)]
    shared = (rare[:n] @ rare.T).tocoo()
    other = shared.row != shared.col
    row, col = shared.row[other], shared.col[other]
    share = shared.data[other] / size[row]
    best = np.zeros(n)
    np.maximum.at(best, row, share)
    between_articles = col < n
    return NearCopies(best, stock, _docs_with_sibling(row[between_articles], col[between_articles],
                                                      share[between_articles], np.asarray(doc_of)))


def _docs_with_sibling(row: np.ndarray, col: np.ndarray, share: np.ndarray, doc_of: np.ndarray) -> set[int]:
    same = (share >= SAME_ARTICLE) & (doc_of[row] != doc_of[col])
    pairs = np.unique(np.stack([doc_of[row[same]], doc_of[col[same]], row[same]], axis=1), axis=0)
    # per (document, other document): how many of the document's articles the other one repeats
    doc_pairs, repeated = np.unique(pairs[:, :2], axis=0, return_counts=True)
    articles = np.bincount(doc_of)
    return {int(a) for (a, _), n in zip(doc_pairs, repeated) if n >= SIBLING_SHARE * articles[a]}
