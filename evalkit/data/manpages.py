"""zh_longdoc/manpages: the Chinese one-line NAME summary -> the man page body.

Source: ``manpages-zh/zh_CN/man1..man8`` (Debian ``manpages-zh``, gzip-compressed roff).
Query = the summary after ``name \\-`` in the NAME section (``.Nd`` for mdoc pages), kept
only if it has Chinese characters. Document = every other section as plain text (roff
stripped by :func:`roff_to_text`), without the translators' boilerplate sections, which are
the same on every page. Link stubs (files holding another page's name) and ``.so`` includes
are skipped. Pages with the same summary share one query.

Evidence position: the query summarises the page, and the section that says what the command
does is its DESCRIPTION, so the position is that section's span in the body (heading and text;
kind ``section``). Headings searched, in this order: ``DESCRIPTION_HEADINGS``; a page with none of
them gets the point where its NAME section stood (zero width, kind ``removed``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from evalkit.data.beir import Evidence
from evalkit.data.store import RetrievalData

VERSION = "4"  # 4: evidence positions (texts unchanged)
SECTION = re.compile(r'^\.(?:SH|Sh)[ \t]+"?([^"\n]*)"?[ \t]*$', re.M)
NAME_HEADINGS = ("NAME", "名称", "名字")
# Translators' sections, the same on every page: heading contains one of these (spaces removed)
BOILERPLATE = ("翻译计划", "中文版维护", "中文版最新", "中文版校对")
CJK = re.compile(r"[\u4e00-\u9fff]")
# the section that says what the command does (first match wins, in this order of preference)
DESCRIPTION_HEADINGS = (("DESCRIPTION", "描述", "描叙"), ("说明", "OVERVIEW", "概述", "INTRODUCTION", "介绍"))

# Escapes with a plain-text meaning; everything else matching ESCAPE is dropped.
NAMED_CHARS = {
    "em": "—", "en": "–", "hy": "-", "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "aq": "'",
    "dq": '"', "co": "©", "rg": "®", "bu": "•", "mi": "-", "pl": "+", "mu": "×", "<=": "≤",
    ">=": "≥", "->": "→", "<-": "←", "tm": "™", "de": "°", "ba": "|", "ti": "~", "ha": "^",
    "rs": "\\", "sl": "/", "at": "@", "sh": "#", "Do": "$", "lB": "[", "rB": "]", "lC": "{", "rC": "}",
}
ESCAPE = re.compile(
    r"\\(?:"
    r"\((?P<two>..)"  # \(xx
    r"|\[(?P<long>[^\]]*)\]"  # \[name]
    r"|f(?:\(..|\[[^\]]*\]|.)"  # font change
    r"|s[+-]?\d+|s\(\d\d|s\[[^\]]*\]"  # size change
    r"|\*(?:\(..|\[[^\]]*\]|.)"  # string register
    r"|n(?:\(..|\[[^\]]*\]|.)"  # number register
    r"|[kz].|[hvwlLoDHSxXYbNR]'[^']*'"  # motions and friends: no text
    r"|(?P<char>.)"  # one-character escapes
    r")"
)
ONE_CHAR = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "|": "", "^": "", "&": "", "/": "", ",": "", ")": "", "c": "", "%": "", "'": "'", "`": "`", ".": ".", "t": " "}
FONT_MACROS = {"B", "I", "R", "SM", "SB", "Nm", "Ar", "Fl", "Cm", "Pa", "Ev", "Va", "Fn", "Fa", "Ic", "Li", "Sy", "Em", "Dv", "Er", "Xr", "Ql", "Dq", "Sq", "Pq", "Op", "Ad", "An", "Ms", "St", "Ux", "Bx", "At", "Nd", "Ft", "Fd", "Vt", "Tn", "Lk", "Mt", "Ot", "Aq", "Bq", "Brq"}
ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}  # arguments glued together
HEADINGS = {"SH", "SS", "Sh", "Ss"}
ITEM_MACROS = {"IP", "TP", "HP", "It", "Tp"}


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "manpages-zh" / "zh_CN"]


def unescape(text: str) -> str:
    def repl(m: re.Match) -> str:
        if m.group("two") is not None:
            return NAMED_CHARS.get(m.group("two"), "")
        if m.group("long") is not None:
            return NAMED_CHARS.get(m.group("long"), "")
        if m.group("char") is not None:
            return ONE_CHAR.get(m.group("char"), "")
        return ""

    return ESCAPE.sub(repl, text)


def _macro_args(rest: str) -> list[str]:
    return [a[1:-1] if a.startswith('"') and a.endswith('"') and len(a) > 1 else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def roff_to_text(source: str) -> str:
    """Plain text of a man/mdoc page: text lines and the text arguments of formatting macros."""
    out: list[str] = []
    in_macro_def = False
    for line in source.splitlines():
        if in_macro_def:
            in_macro_def = line.strip() != ".."
            continue
        if line.startswith(('.\\"', "'\\\"", '.\\\\"')) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.'][ \t]*(\S+)[ \t]*(.*)", line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2)
            if name in ("de", "de1", "am", "ig"):
                in_macro_def = True
                continue
            if name.startswith('\\"'):
                continue
            args = _macro_args(rest)
            if name in FONT_MACROS:
                # mdoc nests macros in arguments (".Nm biff Cm y"): drop the nested macro names
                out.append(unescape(" ".join(a for a in args if a not in FONT_MACROS)))
            elif name in ALTERNATING:
                out.append(unescape("".join(args)))
            elif name in HEADINGS:
                out.append("\n" + unescape(" ".join(args)))
            elif name in ITEM_MACROS and args and name != "TP":
                out.append(unescape(args[0]))
            elif name in ("PP", "LP", "P", "Pp", "sp", "br"):
                out.append("")
            # all other requests (.TH, .nf, .if, .ne, .RS, .Bl, ...) carry no text we keep
            continue
        out.append(unescape(line))
    text = "\n".join(s.rstrip() for s in out)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_sections(source: str) -> list[tuple[str, str]]:
    """[(heading, roff body)] in page order; text before the first heading is dropped (.TH etc.)."""
    marks = list(SECTION.finditer(source))
    return [(unescape(m.group(1)).strip(), source[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(source)]) for i, m in enumerate(marks)]


def name_summary(name_body: str) -> str | None:
    nd = re.search(r"^\.Nd[ \t]+(.+)$", name_body, re.M)
    if nd:
        summary = unescape(" ".join(_macro_args(nd.group(1))))
    else:
        text = " ".join(roff_to_text(name_body).split())
        parts = re.split(r"\s+-+\s*|\s*-+\s+", text, maxsplit=1)
        if len(parts) != 2:
            return None
        summary = parts[1]
    summary = summary.strip(" \"'")
    return summary if CJK.search(summary) else None


def parse_page(raw: bytes) -> tuple[str, str] | None:
    """(summary, body text) of one page, or None if it has no Chinese NAME summary."""
    parsed = parse_page_with_evidence(raw)
    return None if parsed is None else parsed[:2]


def parse_page_with_evidence(raw: bytes) -> tuple[str, str, tuple[int, int, str]] | None:
    """(summary, body, (start, end, kind) of the evidence in the body); see the module docstring."""
    source = raw.decode("utf-8")
    sections = split_sections(source)
    name_idx = next((i for i, (h, _) in enumerate(sections) if any(k in h.upper() for k in NAME_HEADINGS)), None)
    if name_idx is None:
        return None
    summary = name_summary(sections[name_idx][1])
    if summary is None:
        return None
    body, spans, name_at = "", [], 0
    for i, (heading, roff) in enumerate(sections):
        if i == name_idx:
            name_at = len(body) + 2 if body else 0  # where the next section will start
        if i == name_idx or _boilerplate(heading):
            continue
        body += "\n\n" if body else ""
        spans.append((heading, len(body)))
        body += f"{heading}\n{roff_to_text(roff)}"
    stripped = body.strip()
    # spans are into ``body``; strip() only removes a leading or trailing run of whitespace
    lead = len(body) - len(body.lstrip())
    ends = [start for _, start in spans[1:]] + [len(body)]
    for names in DESCRIPTION_HEADINGS:
        for (heading, start), end in zip(spans, ends):
            if any(n in heading.upper() for n in names):
                return summary, stripped, (start - lead, len(body[:end].rstrip()) - lead, "section")
    return summary, stripped, (min(name_at, len(stripped)), min(name_at, len(stripped)), "removed")


def _boilerplate(heading: str) -> bool:
    flat = "".join(heading.split()).strip("”“\"[]《》:：")
    return flat == "跋" or any(b in flat for b in BOILERPLATE)


def build(raw_dir: Path) -> RetrievalData:
    root = raw_paths(raw_dir)[0]
    dropped = {"link_stubs": 0, "so_includes": 0, "no_chinese_name_summary": 0, "empty_body": 0}
    corpus, summary_to_docs, evidence = [], {}, {}
    for path in sorted(root.glob("man*/*.gz")):
        raw = path.read_bytes()
        if raw[:2] != b"\x1f\x8b":  # a link stub: the file holds another page's file name
            dropped["link_stubs"] += 1
            continue
        data = gzip.decompress(raw)
        if data.lstrip().startswith(b".so"):
            dropped["so_includes"] += 1
            continue
        parsed = parse_page_with_evidence(data)
        if parsed is None:
            dropped["no_chinese_name_summary"] += 1
            continue
        summary, body, (start, end, kind) = parsed
        if len(body) < 50:
            dropped["empty_body"] += 1
            continue
        doc_id = path.relative_to(root).as_posix().removesuffix(".gz")
        corpus.append((doc_id, body))
        summary_to_docs.setdefault(summary, []).append(doc_id)
        evidence.setdefault(summary, []).append(Evidence(doc_id, start, end, kind))
    return RetrievalData.from_groups(corpus, summary_to_docs, dropped, evidence)
