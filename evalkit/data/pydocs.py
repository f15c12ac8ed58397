"""mixed_lang/pydocs: code-switched Simplified Chinese sentences <-> their English source.

Source: ``python-docs-zh-cn/**/*.po`` (gettext catalogs of the Python 3.13 docs).
sentence1 = the Chinese ``msgstr`` (keeps English identifiers and terms inside, e.g.
"Python 解释器内置了很多函数"), sentence2 = its English ``msgid``. Kept only when the
translation is not fuzzy, not empty, not identical to the source, not pure markup, not
short, and actually code-switched (has both Chinese characters and a Latin word). Texts that
occur more than once (on either side) are dropped, so every sentence has exactly one match.
From the remaining pool ``POOL_SIZE`` pairs are sampled with a fixed seed: enough candidates
that the shared Latin tokens alone do not solve it (the data card and ``info`` report a BM25
baseline on those tokens next to the model scores).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from pathlib import Path

from evalkit.data.store import PairData

VERSION = "2"
POOL_SIZE = 4000
SEED = 20240607
MIN_ENGLISH_WORDS = 6
MIN_CJK_CHARS = 6
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# reST markup that is not prose: roles, literals, links, emphasis, substitutions
MARKUP = re.compile(r":[a-z:]+:`[^`]*`|``[^`]*``|`[^`]*`_{0,2}|\*\*?|\|[^|]*\|")


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "python-docs-zh-cn"]


def parse_po(text: str) -> list[dict]:
    """Entries of a .po file: {"msgid", "msgstr", "fuzzy", "plural", "ctxt"} (header excluded)."""
    entries, cur, field = [], None, None

    def flush():
        if cur is not None and cur.get("msgid"):
            entries.append(cur)

    for line in text.splitlines():
        line = line.strip()
        if not line:
            flush()
            cur, field = None, None
            continue
        if cur is None:
            cur = {"msgid": "", "msgstr": "", "fuzzy": False, "plural": False, "ctxt": None}
        if line.startswith("#,"):
            cur["fuzzy"] |= "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"') and field:
            cur[field] = (cur[field] or "") + ast.literal_eval(line)
        else:
            key, _, value = line.partition(" ")
            if key == "msgid_plural" or key.startswith("msgstr["):
                cur["plural"] = True
                field = None
                continue
            field = {"msgid": "msgid", "msgstr": "msgstr", "msgctxt": "ctxt"}.get(key)
            if field:
                cur[field] = ast.literal_eval(value) if value else ""
    flush()
    return entries


def prose(text: str) -> str:
    return " ".join(MARKUP.sub(" ", text).split())


def keep_reason(msgid: str, msgstr: str, fuzzy: bool) -> str | None:
    """Why a pair is dropped, or None to keep it."""
    if fuzzy:
        return "fuzzy"
    if not msgstr.strip():
        return "empty_translation"
    if msgid.strip() == msgstr.strip():
        return "identical"
    english = prose(msgid)
    if not re.search(r"[A-Za-z]{2}", english):
        return "pure_markup"
    if len(english.split()) < MIN_ENGLISH_WORDS or len(CJK.findall(msgstr)) < MIN_CJK_CHARS:
        return "too_short"
    if not LATIN_WORD.search(msgstr):
        return "not_code_switched"
    return None


def build(raw_dir: Path) -> PairData:
    root = raw_paths(raw_dir)[0]
    dropped: Counter = Counter()
    pairs: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.po")):
        for e in parse_po(path.read_text(encoding="utf-8")):
            if e["plural"]:
                dropped["plural_forms"] += 1
                continue
            reason = keep_reason(e["msgid"], e["msgstr"], e["fuzzy"])
            if reason:
                dropped[reason] += 1
                continue
            pairs.append((" ".join(e["msgstr"].split()), " ".join(e["msgid"].split())))
    zh_count = Counter(zh for zh, _ in pairs)
    en_count = Counter(en for _, en in pairs)
    unique = []
    for zh, en in pairs:
        if zh_count[zh] > 1 or en_count[en] > 1:
            dropped["repeated_text"] += 1
        else:
            unique.append((zh, en))
    rng = random.Random(SEED)
    sample = sorted(rng.sample(range(len(unique)), min(POOL_SIZE, len(unique))))
    dropped["not_sampled"] = len(unique) - len(sample)
    return PairData(pairs=[unique[i] for i in sample], dropped=dict(sorted(dropped.items())), extra={"eligible_pairs": len(unique)})
