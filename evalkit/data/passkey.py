"""zh_passkey/<N>: a person's name -> the statute document that states their pass code.

After LongEmbed's passkey task, in Chinese and on real text. Per length ``N`` (reference tokens,
see :mod:`evalkit.data.haystack`): 100 documents, each a window of real statute text from the laws
mirror (windows spread evenly over the ~8M characters, so no two documents share text) with one
sentence inserted at a seeded random depth::

    张伟华的通行码是 41906。请记住，41906 是张伟华的通行码。

50 documents are the targets of the 50 queries ``张伟华的通行码是多少？``; the other 50 carry
their own names and codes (distractors), so every document looks alike. Names (surname + two
given-name characters, so no name is part of another) and 5-digit codes are unique within a
length and occur nowhere in that length's haystack text.
"""

from __future__ import annotations

import random
from pathlib import Path

from evalkit.data import haystack
from evalkit.data.store import RetrievalData

VERSION = "1"
KIND = "retrieval"
ARGS = ("256", "512", "1024", "2048", "4096", "8192", "16384", "32768")  # lengths of the built-in task
SEED = 20250611
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建红晶云志宇欣怡浩然轩梓涵雨嘉琪思睿"
    "博文俊凯佳悦晨阳海燕雪梅林峰斌波宁婷慧颖倩琳瑶诗若安泽楠昊天逸飞亮帆"
)


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "laws", haystack.reference_tokenizer_path()]  # the tokenizer decides the cuts


def needle_sentence(name: str, code: str) -> str:
    return f"{name}的通行码是 {code}。请记住，{code} 是{name}的通行码。"


def query_text(name: str) -> str:
    return f"{name}的通行码是多少？"


def names_and_codes(rng: random.Random, n: int, avoid: str) -> list[tuple[str, str]]:
    """``n`` distinct (name, code) pairs, neither occurring in ``avoid`` (the haystack text)."""
    names: list[str] = []
    codes: list[str] = []
    while len(names) < n:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        if name not in names and name not in avoid:
            names.append(name)
    while len(codes) < n:
        code = str(rng.randrange(10000, 100000))
        if code not in codes and code not in avoid:
            codes.append(code)
    return list(zip(names, codes))


def build(raw_dir: Path, arg: str | None = None) -> RetrievalData:
    target = haystack.parse_length("passkey", arg)
    hay = haystack.law_haystack(str(raw_dir))
    rng = random.Random(SEED + target)
    anchors = hay.anchors(haystack.N_DOCS)
    # Names and codes must not occur in the text around them: check against each window cut at the
    # full target length (a superset of the haystack the document keeps).
    windows = "\n".join(hay.text[hay.starts[a] : hay.cut(a, target)] for a in anchors)
    people = names_and_codes(rng, haystack.N_DOCS, windows)
    depths = [rng.random() for _ in anchors]
    targets = sorted(rng.sample(range(haystack.N_DOCS), haystack.N_QUERIES))
    docs = [haystack.make_document(hay, a, needle_sentence(*who), target, d) for a, who, d in zip(anchors, people, depths)]

    corpus = [(f"d{i:03d}", doc["text"]) for i, doc in enumerate(docs)]
    queries = [(f"q{n:02d}", query_text(people[i][0])) for n, i in enumerate(targets)]
    qrels = [(f"q{n:02d}", f"d{i:03d}", 1) for n, i in enumerate(targets)]
    extra = haystack.length_facts(docs, target)
    extra.update({"seed": SEED + target, "needle_template": needle_sentence("<name>", "<code>"), "query_template": query_text("<name>")})
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, dropped={}, extra=extra)
