"""zh_longdoc/laws_deep: an article (``第N条 …``) from anywhere in a law -> that law, stratified by
how deep the article stood.

Source: the ``laws/`` mirror, the same documents as ``laws`` (cleaned by :func:`laws.clean`).
Query = the text of one article without its ``第N条`` label (its paragraphs joined by newlines);
the article is removed from its law, so the law must be matched by what surrounds the hole.
Depth = Qwen3 tokens (the reference tokenizer of :mod:`evalkit.data.haystack`) of the built
document before the point where the article stood. Per depth bucket (≤512, 512–2k, 2k–8k,
8k–32k tokens) up to ``PER_BUCKET`` articles are drawn (fixed seed), one law at a time in a
shuffled round so that a few huge laws do not fill a bucket. Several articles may be removed
from one law; depths and positions are those of the built document.

Not drawn (counted in ``dropped``): the purpose clause (``第一条``, the ``laws`` subset's query),
the last article of a law (nothing follows it to mark its position), articles under ``MIN_CHARS`` or over ``MAX_CHARS`` characters, articles that name their own law,
near-copies of another article or of text outside the articles of any law (an amendment
quoting what it rewrites, a regulation restating its law, a model clause:
see :mod:`evalkit.data.near_copies`), boilerplate made of stock phrases, every article of a law
that has another version or twin in the corpus (that version would be a distractor with the
same context around the hole), and articles deeper than 32k tokens.

Evidence position: where the article stood, a zero-width span at the start of the line that
now follows it (kind ``removed``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit.data.beir import Evidence
from evalkit.data.laws import clean, law_files, remove_span
from evalkit.data.store import RetrievalData
from evalkit.data.validity import DEPTH_BUCKETS as ALL_DEPTHS

VERSION = "1"
SEED = 20250121
DEPTH_BUCKETS = ALL_DEPTHS[:4]  # ≤512 … 8k–32k: too few articles lie deeper for a bucket (build.json)
PER_BUCKET = 200
MIN_CHARS, MAX_CHARS = 30, 400
NEAR_COPY = 0.3  # an article sharing this share of its shingles with another article is a near-copy
STOCK_SHARE = 0.5  # an article made this much of stock phrases is boilerplate
ARTICLE = re.compile(r"^第[零一二三四五六七八九十百千〇两]+条(?:之[一二三四五六七八九十]+)?[ \t\u3000]+(?=\S)")


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "laws"]


@dataclass
class Article:
    doc: int  # index into the documents
    start: int  # the article's block in the cleaned text: its label ...
    end: int  # ... up to the next article or heading line (or the end of the text)
    body: str  # the query: the article without its label
    depth: int = 0  # reference tokens before ``start`` in the cleaned text


def articles_of(doc: int, text: str, headings: set[str]) -> list[Article]:
    """The articles of one cleaned law, each up to the next article or heading line."""
    out: list[Article] = []
    pos, current = 0, None
    for line in text.split("\n"):
        boundary = ARTICLE.match(line) or line.strip() in headings
        if boundary and current is not None:
            out.append(_article(doc, text, current, pos))
            current = None
        if ARTICLE.match(line):
            current = pos
        pos += len(line) + 1
    if current is not None:
        out.append(_article(doc, text, current, len(text)))
    return out


def _article(doc: int, text: str, start: int, end: int) -> Article:
    block = ARTICLE.sub("", text[start:end], count=1)
    body = "\n".join(line.strip() for line in block.split("\n") if line.strip())
    return Article(doc, start, end, body)


def read_laws(raw_dir: Path) -> list[tuple[str, str, set[str]]]:
    """(doc id, cleaned text, its heading lines) per law file, in sorted order."""
    root = Path(raw_dir) / "laws"
    out = []
    for path in law_files(raw_dir):
        raw = path.read_text(encoding="utf-8")
        headings = {re.sub(r"^#+\s*", "", ln).strip() for ln in raw.splitlines() if ln.startswith("#")}
        out.append((path.relative_to(root).with_suffix("").as_posix(), clean(raw), headings))
    return out


def token_starts(texts: list[str]) -> list[np.ndarray]:
    """Character offset of every reference token, per text (tokens before ``p``: searchsorted)."""
    from evalkit.data.haystack import reference_tokenizer

    tok, out = reference_tokenizer(), []
    for i in range(0, len(texts), 64):
        out += [np.asarray([o[0] for o in e.offsets], dtype=np.int64)
                for e in tok.encode_batch(texts[i : i + 64], add_special_tokens=False)]
    return out


def bucket_of(depth: int) -> int | None:
    return next((i for i, (lo, hi, _) in enumerate(DEPTH_BUCKETS) if (lo == 0 or depth > lo) and depth <= hi), None)


def outside_articles(arts: list[Article], laws: list[tuple[str, str, set[str]]]) -> list[str]:
    """Per law, its text outside its articles (title, preamble, and what amendments quote)."""
    spans: dict[int, list[Article]] = {}
    for a in arts:
        spans.setdefault(a.doc, []).append(a)
    out = []
    for d, (_, text, _) in enumerate(laws):
        edges = [0] + [x for a in spans.get(d, []) for x in (a.start, a.end)] + [len(text)]
        out.append("\n".join(text[edges[i] : edges[i + 1]] for i in range(0, len(edges), 2)))
    return out


def eligibility(arts: list[Article], laws: list[tuple[str, str, set[str]]]) -> list[str | None]:
    """Per article: None (may be drawn) or why not."""
    from evalkit.data.near_copies import near_copies

    copies = near_copies([a.body for a in arts], [a.doc for a in arts], outside_articles(arts, laws))
    titles = [text.split("\n", 1)[0].strip().removeprefix("中华人民共和国") for _, text, _ in laws]
    reasons = []
    for i, a in enumerate(arts):
        first = laws[a.doc][1].startswith("第一条", a.start)
        checks = [
            (first, "purpose_clause_article (the laws subset's query)"),
            (a.end >= len(laws[a.doc][1]), "last_in_its_law (a position is the start of the line after it)"),
            (len(a.body) < MIN_CHARS, f"under_{MIN_CHARS}_chars"),
            (len(a.body) > MAX_CHARS, f"over_{MAX_CHARS}_chars"),
            (a.doc in copies.docs_with_sibling, "law_has_another_version_or_twin"),
            (copies.containment[i] >= NEAR_COPY, "near_copy_of_another_article"),
            (copies.stock_share[i] >= STOCK_SHARE, "boilerplate_stock_phrases"),
            (bool(titles[a.doc]) and titles[a.doc] in a.body, "names_its_own_law"),
            (bucket_of(a.depth) is None, "deeper_than_32768_tokens"),
        ]
        reasons.append(next((why for bad, why in checks if bad), None))
    return reasons


def draw(arts: list[Article], reasons: list[str | None]) -> list[int]:
    """Up to PER_BUCKET articles per depth bucket: laws in a shuffled order, one article of each
    law per round (a random one of that law's in the bucket), until the bucket is full."""
    rng = random.Random(SEED)
    picked: list[int] = []
    for b in range(len(DEPTH_BUCKETS)):
        by_law: dict[int, list[int]] = {}
        for i, a in enumerate(arts):
            if reasons[i] is None and bucket_of(a.depth) == b:
                by_law.setdefault(a.doc, []).append(i)
        order = sorted(by_law)
        rng.shuffle(order)
        for law in order:
            rng.shuffle(by_law[law])
        taken: list[int] = []
        while len(taken) < PER_BUCKET and any(by_law.values()):
            for law in order:
                if by_law[law] and len(taken) < PER_BUCKET:
                    taken.append(by_law[law].pop())
        picked += taken
    return sorted(picked)


def remove_articles(text: str, starts: np.ndarray, arts: list[Article]) -> tuple[str, list[tuple[int, int]]]:
    """The law without ``arts`` (ascending), and per article (position, depth) in the result.
    Each block runs from a line start to the next line start, both token boundaries of Qwen's
    pre-tokenizer, so a depth is the original one less the tokens of the blocks removed before."""
    shift, tokens_removed, out = 0, 0, []
    for a in arts:
        before = len(text)
        text, pos = remove_span(text, a.start - shift, a.end - shift)
        out.append((pos, a.depth - tokens_removed))
        tokens_removed += int(np.searchsorted(starts, a.end) - np.searchsorted(starts, a.start))
        shift += before - len(text)
    return text, out


def build(raw_dir: Path) -> RetrievalData:
    laws = read_laws(raw_dir)
    starts = token_starts([text for _, text, _ in laws])
    arts = [a for d, (_, text, heads) in enumerate(laws) for a in articles_of(d, text, heads)]
    for a in arts:
        a.depth = int(np.searchsorted(starts[a.doc], a.start))
    reasons = eligibility(arts, laws)
    picked = draw(arts, reasons)
    by_law: dict[int, list[int]] = {}
    for i in picked:
        by_law.setdefault(arts[i].doc, []).append(i)
    corpus, placed = [], {}
    for d, (doc_id, text, _) in enumerate(laws):
        text, where = remove_articles(text, starts[d], [arts[i] for i in by_law.get(d, [])])
        placed.update(zip(by_law.get(d, []), where))
        corpus.append((doc_id, text))
    return _data(corpus, laws, arts, reasons, picked, placed)


def _data(corpus, laws, arts, reasons, picked, placed) -> RetrievalData:
    """Queries interleaved across buckets (so ``task.limit=N`` takes every depth)."""
    per_bucket = [[i for i in picked if bucket_of(placed[i][1]) == b] for b in range(len(DEPTH_BUCKETS))]
    queries, qrels, evidence = [], [], {}
    for n, i in enumerate(q for row in _round_robin(per_bucket) for q in row):
        qid, doc_id = f"q{n:04d}", laws[arts[i].doc][0]
        queries.append((qid, arts[i].body))
        qrels.append((qid, doc_id, 1))
        evidence[qid] = [Evidence(doc_id, placed[i][0], placed[i][0], "removed")]
    dropped: dict[str, int] = {}
    for why in reasons:
        if why is not None:
            dropped[f"articles_{why}"] = dropped.get(f"articles_{why}", 0) + 1
    dropped["eligible_articles_not_drawn"] = reasons.count(None) - len(picked)
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, dropped=dropped, evidence=evidence,
                         extra=_facts(arts, reasons, picked, per_bucket))


def _facts(arts, reasons, picked, per_bucket) -> dict:
    """build.json: how many articles each depth had to draw from, and what was drawn."""
    from evalkit.data.haystack import reference_tokenizer_id

    labels = [label for _, _, label in DEPTH_BUCKETS]
    eligible = [(bucket_of(a.depth), a.doc) for a, why in zip(arts, reasons) if why is None]
    return {
        "reference_tokenizer": reference_tokenizer_id(),
        "articles": len(arts),
        "eligible_articles_by_depth": {label: sum(b == k for b, _ in eligible) for k, label in enumerate(labels)},
        "laws_with_eligible_articles_by_depth": {label: len({d for b, d in eligible if b == k})
                                                 for k, label in enumerate(labels)},
        "queries_by_depth": dict(zip(labels, [len(p) for p in per_bucket])),
        "laws_queried": len({arts[i].doc for i in picked}),
    }


def _round_robin(groups: list[list[int]]) -> list[list[int]]:
    """Rows of one item from each group in turn: [[g0[0], g1[0], ...], [g0[1], g1[1], ...], ...]."""
    longest = max((len(g) for g in groups), default=0)
    return [[g[k] for g in groups if k < len(g)] for k in range(longest)]
