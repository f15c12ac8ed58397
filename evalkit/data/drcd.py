"""zh_longdoc/drcd: a human question -> the whole Wikipedia article it was asked about.

Source: ``drcd/DRCD_{dev,test}.json`` (DRCD, SQuAD layout, Traditional Chinese). DRCD
splits each article's paragraphs between dev and test, so an article is rebuilt from both
files: its paragraphs in their original order (the number after the article id in the
paragraph id), joined with blank lines. Only articles of at least ``MIN_CHARS`` characters
are kept (shorter ones are not long documents); the questions of kept articles are the
queries, each relevant to its article only. Duplicate question texts within one article are
kept once, and at most ``QUESTIONS_PER_ARTICLE`` questions per article are sampled (fixed seed):
DRCD asks ~24 questions per article, and 239 articles with 5 questions each already give over
a thousand queries while keeping the task quick enough to be evalkit's default.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from evalkit.data.store import RetrievalData

VERSION = "2"
MIN_CHARS = 1000
QUESTIONS_PER_ARTICLE = 5
SEED = 20240607
SPLITS = ("dev", "test")


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "drcd" / f"DRCD_{s}.json" for s in SPLITS]


def _paragraph_order(pid: str) -> tuple[int, str]:
    tail = pid.rsplit("-", 1)[-1]
    return (int(tail), pid) if tail.isdigit() else (1 << 30, pid)


def build(raw_dir: Path) -> RetrievalData:
    articles: dict[str, dict] = {}
    for path in raw_paths(raw_dir):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            entry = articles.setdefault(article["id"], {"title": article["title"], "paragraphs": {}})
            for para in article["paragraphs"]:
                entry["paragraphs"][para["id"]] = para
    corpus, queries, qrels = [], [], []
    dropped = {"short_articles": 0, "questions_of_short_articles": 0, "duplicate_questions": 0, "questions_not_sampled": 0}
    rng = random.Random(SEED)
    for art_id in sorted(articles, key=lambda a: (len(a), a)):
        entry = articles[art_id]
        paras = [entry["paragraphs"][p] for p in sorted(entry["paragraphs"], key=_paragraph_order)]
        text = "\n\n".join(p["context"].strip() for p in paras)
        n_questions = sum(len(p["qas"]) for p in paras)
        if len(text) < MIN_CHARS:
            dropped["short_articles"] += 1
            dropped["questions_of_short_articles"] += n_questions
            continue
        doc_id = f"drcd-{art_id}"
        corpus.append((doc_id, f"{entry['title']}\n\n{text}"))
        seen, candidates = set(), []
        for para in paras:
            for qa in para["qas"]:
                question = qa["question"].strip()
                if question in seen or not question:
                    dropped["duplicate_questions"] += 1
                    continue
                seen.add(question)
                candidates.append((qa["id"], question))
        picked = sorted(rng.sample(range(len(candidates)), min(QUESTIONS_PER_ARTICLE, len(candidates))))
        dropped["questions_not_sampled"] += len(candidates) - len(picked)
        for i in picked:
            qid, question = candidates[i]
            queries.append((qid, question))
            qrels.append((qid, doc_id, 1))
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, dropped=dropped)
