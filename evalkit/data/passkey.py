"""zh_passkey/<N>: a person's name -> the statute document that states their pass code.

After LongEmbed's passkey task, in Chinese and on real text. Per length ``N`` (reference tokens,
see :mod:`evalkit.data.haystack`): 100 documents, each a window of real statute text from the laws
mirror (windows spread evenly over the ~8M characters, so no two documents share text) with one
sentence inserted at a seeded random depth::

    张伟华（Zhang Weihua）的通行码是 41906。请记住，41906 是张伟华（Zhang Weihua）的通行码。

50 documents are the targets of the 50 queries ``张伟华（Zhang Weihua）的通行码是多少？``; the other 50 carry
their own names and codes (distractors), so every document looks alike. Names (surname + two
given-name characters, so no name is part of another; unique in pinyin too) and 5-digit codes are
unique within a length and occur nowhere in that length's haystack text. Names carry their pinyin
(see :func:`written`).
"""

from __future__ import annotations

import random
from pathlib import Path

from evalkit.data import haystack
from evalkit.data.store import RetrievalData

VERSION = "2"  # 2: names written with their pinyin
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


PINYIN_TEXT = (
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu 郭guo 何he 高gao "
    "林lin 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 韩han 冯feng 邓deng 曹cao 彭peng 曾zeng 肖xiao 田tian 董dong "
    "袁yuan 潘pan 蒋jiang 蔡cai 余yu 杜du 叶ye 程cheng 苏su 魏wei 吕lü 丁ding 任ren 沈shen 姚yao 卢lu 姜jiang 崔cui "
    "钟zhong 谭tan 陆lu 汪wang 范fan 金jin 石shi 廖liao 贾jia 夏xia 韦wei 方fang 白bai 邹zou 孟meng 熊xiong 秦qin 邱qiu "
    "江jiang 尹yin 薛xue 段duan 雷lei 侯hou 龙long 史shi 陶tao 黎li 贺he 顾gu 毛mao 郝hao 龚gong 邵shao 万wan 钱qian "
    "严yan 武wu 戴dai 伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie 娟juan 涛tao "
    "明ming 超chao 秀xiu 霞xia 平ping 刚gang 桂gui 英ying 华hua 玉yu 兰lan 萍ping 鹏peng 辉hui 建jian 红hong 晶jing "
    "云yun 志zhi 宇yu 欣xin 怡yi 浩hao 然ran 轩xuan 梓zi 涵han 雨yu 嘉jia 琪qi 思si 睿rui 博bo 文wen 俊jun 凯kai 佳jia "
    "悦yue 晨chen 阳yang 海hai 燕yan 雪xue 梅mei 峰feng 斌bin 波bo 宁ning 婷ting 慧hui 颖ying 倩qian 琳lin 瑶yao 诗shi "
    "若ruo 安an 泽ze 楠nan 昊hao 天tian 逸yi 飞fei 亮liang 帆fan "
)
# Every character of SURNAMES and GIVEN with its pinyin (no tones; surname readings, e.g. 曾 zeng).
PINYIN = {tok[0]: tok[1:] for tok in PINYIN_TEXT.split()}


def romanised(name: str) -> str:
    """``张伟华`` -> ``Zhang Weihua``: the name as a passport writes it."""
    return PINYIN[name[0]].capitalize() + " " + "".join(PINYIN[c] for c in name[1:]).capitalize()


def written(name: str) -> str:
    """A name as the documents and queries write it: in characters, with its pinyin in brackets.
    The pinyin keeps the task about *length*: an English-centred model (all-MiniLM-L6-v2 reads
    Chinese names at 0.2 accuracy@1 even with no haystack at all, and the pinyin names at 0.94)
    would otherwise fail at every length, and its curve would say nothing about context."""
    return f"{name}（{romanised(name)}）"


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "laws", haystack.reference_tokenizer_path()]  # the tokenizer decides the cuts


def needle_sentence(name: str, code: str) -> str:
    """``name`` as written (:func:`written`)."""
    return f"{name}的通行码是 {code}。请记住，{code} 是{name}的通行码。"


def query_text(name: str) -> str:
    return f"{name}的通行码是多少？"


def names_and_codes(rng: random.Random, n: int, avoid: str) -> list[tuple[str, str]]:
    """``n`` distinct (name, code) pairs, neither occurring in ``avoid`` (the haystack text)."""
    names: list[str] = []
    codes: list[str] = []
    spelled: set[str] = set()
    while len(names) < n:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        # unique in characters and in pinyin (宇 and 雨 are both "yu")
        if name not in names and name not in avoid and romanised(name) not in spelled:
            names.append(name)
            spelled.add(romanised(name))
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
    docs = [haystack.make_document(hay, a, needle_sentence(written(name), code), target, d)
            for a, (name, code), d in zip(anchors, people, depths)]

    corpus = [(f"d{i:03d}", doc["text"]) for i, doc in enumerate(docs)]
    queries = [(f"q{n:02d}", query_text(written(people[i][0]))) for n, i in enumerate(targets)]
    qrels = [(f"q{n:02d}", f"d{i:03d}", 1) for n, i in enumerate(targets)]
    extra = haystack.length_facts(docs, target)
    extra.update({"seed": SEED + target, "needle_template": needle_sentence("<name>（<Pinyin>）", "<code>"),
                  "query_template": query_text("<name>（<Pinyin>）")})
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels, dropped={}, extra=extra)
