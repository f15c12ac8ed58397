"""zh_needle/<N>: a real human question -> the statute document with the sentence that answers it.

After LongEmbed's needle task, in Chinese and from real text. The needle is a DRCD fact: a
question (Traditional Chinese, written by a person about a Wikipedia paragraph) and the sentence
of its paragraph that holds the answer (found by DRCD's ``answer_start``). Per length ``N``
(reference tokens, :mod:`evalkit.data.haystack`): 100 documents of real statute text (Simplified)
from the laws mirror, each with ONE such sentence inserted at a seeded random depth, so neither the
Traditional script nor "there is a needle" tells documents apart. 50 documents are queried with
their question; the other 50 needles are distractors. The 100 needles come from 100 different DRCD
articles and are the same at every length (only the length and the depth change), so the scores
of the lengths are comparable.

Which questions: the answer lies inside one sentence of 20-120 characters that does not open with
a pronoun (他, 此, 該… would need the paragraph to be understood); the question does not point at
the text (文中, 本文…); and the question is not a near-copy of the sentence: at most
``MAX_BIGRAM_OVERLAP`` of the question's CJK character bigrams occur in the sentence (and at least
``MIN_BIGRAM_OVERLAP``, so it still names what the sentence is about). The overlap of the queried
pairs is recorded in build.json.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from evalkit.data import haystack
from evalkit.data.store import RetrievalData

VERSION = "1"
KIND = "retrieval"
ARGS = ("256", "512", "1024", "2048", "4096", "8192", "16384", "32768")
SEED = 20250612
SPLITS = ("dev", "test")
SENTENCE = re.compile(r"[^。！？]*[。！？]+[」』”）]*")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MIN_SENTENCE_CHARS, MAX_SENTENCE_CHARS = 20, 120
MIN_QUESTION_CHARS = 8
MIN_BIGRAM_OVERLAP, MAX_BIGRAM_OVERLAP = 0.2, 0.5
PRONOUN_OPENINGS = tuple("他她它其此該這那")
POINTS_AT_TEXT = ("文中", "本文", "上文", "文章", "這段", "此段", "作者")


def drcd_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "drcd" / f"DRCD_{s}.json" for s in SPLITS]


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "laws", *drcd_paths(raw_dir), haystack.reference_tokenizer_path()]


def cjk_bigrams(text: str) -> set[str]:
    return {a + b for a, b in zip(text, text[1:]) if CJK.fullmatch(a) and CJK.fullmatch(b)}


def overlap(question: str, sentence: str) -> dict:
    """Share of the question's distinct CJK characters / CJK bigrams that occur in the sentence."""
    chars = set(CJK.findall(question))
    bigrams = cjk_bigrams(question)
    return {
        "chars": len(chars & set(sentence)) / max(1, len(chars)),
        "bigrams": len(bigrams & cjk_bigrams(sentence)) / max(1, len(bigrams)),
    }


def answer_sentence(context: str, start: int, answer: str) -> str | None:
    end = start + len(answer)
    if context[start:end] != answer:
        return None
    for m in SENTENCE.finditer(context):
        if m.start() <= start and end <= m.end():
            return m.group().strip()
    return None


def eligible(raw_dir: Path) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """article id -> usable needles (question, sentence, answer, ids), in file order; reject counts."""
    by_article: dict[str, list[dict]] = {}
    dropped = {"answer_not_in_one_sentence": 0, "sentence_length": 0, "pronoun_opening": 0,
               "question_points_at_text_or_short": 0, "near_copy_or_unrelated": 0, "duplicate_question": 0}
    seen = set()
    for path in drcd_paths(raw_dir):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    question, ans = qa["question"].strip(), qa["answers"][0]
                    sentence = answer_sentence(para["context"], ans["answer_start"], ans["text"])
                    if sentence is None:
                        reason = "answer_not_in_one_sentence"
                    elif not MIN_SENTENCE_CHARS <= len(sentence) <= MAX_SENTENCE_CHARS:
                        reason = "sentence_length"
                    elif sentence.startswith(PRONOUN_OPENINGS):
                        reason = "pronoun_opening"
                    elif len(question) < MIN_QUESTION_CHARS or any(w in question for w in POINTS_AT_TEXT):
                        reason = "question_points_at_text_or_short"
                    elif not MIN_BIGRAM_OVERLAP <= overlap(question, sentence)["bigrams"] <= MAX_BIGRAM_OVERLAP:
                        reason = "near_copy_or_unrelated"
                    elif question in seen:
                        reason = "duplicate_question"
                    else:
                        seen.add(question)
                        by_article.setdefault(article["id"], []).append(
                            {"qa_id": qa["id"], "question": question, "sentence": sentence, "answer": ans["text"]}
                        )
                        continue
                    dropped[reason] += 1
    return by_article, dropped


@lru_cache(maxsize=2)
def pick_needles(raw_dir: str) -> tuple[list[dict], dict[str, int], int]:
    """100 needles from 100 different articles (seeded; the first 50 are queried), reject counts,
    number of eligible questions. Cached: every length uses the same needles."""
    by_article, dropped = eligible(Path(raw_dir))
    rng = random.Random(SEED)
    articles = rng.sample(sorted(by_article), haystack.N_DOCS)
    return [rng.choice(by_article[a]) for a in articles], dropped, sum(len(v) for v in by_article.values())


def _describe(values) -> dict:
    v = np.asarray(values)
    return {"min": round(float(v.min()), 3), "median": round(float(np.median(v)), 3), "mean": round(float(v.mean()), 3), "max": round(float(v.max()), 3)}


def build(raw_dir: Path, arg: str | None = None) -> RetrievalData:
    target = haystack.parse_length("needle", arg)
    hay = haystack.law_haystack(str(raw_dir))
    needles, dropped, n_eligible = pick_needles(str(raw_dir))
    rng = random.Random(SEED + target)
    anchors = hay.anchors(haystack.N_DOCS)
    depths = [rng.random() for _ in anchors]
    # documents in haystack order; which needle goes where and which documents are queried is seeded
    slots = rng.sample(range(haystack.N_DOCS), haystack.N_DOCS)  # slot of needle k
    docs = [None] * haystack.N_DOCS
    for k, slot in enumerate(slots):
        docs[slot] = haystack.make_document(hay, anchors[slot], needles[k]["sentence"], target, depths[slot])

    corpus = [(f"d{i:03d}", doc["text"]) for i, doc in enumerate(docs)]
    queried = sorted(range(haystack.N_QUERIES), key=lambda k: slots[k])
    queries = [(f"q{n:02d}-{needles[k]['qa_id']}", needles[k]["question"]) for n, k in enumerate(queried)]
    qrels = [(qid, f"d{slots[k]:03d}", 1) for (qid, _), k in zip(queries, queried)]
    ov = [overlap(needles[k]["question"], needles[k]["sentence"]) for k in queried]
    extra = haystack.length_facts(docs, target)
    extra.update({
        "seed": SEED + target,
        "queried_question_sentence_overlap": {
            "chars": _describe([o["chars"] for o in ov]),
            "bigrams": _describe([o["bigrams"] for o in ov]),
        },
        "eligible_questions": n_eligible,
    })
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, dropped=dict(dropped), extra=extra)
