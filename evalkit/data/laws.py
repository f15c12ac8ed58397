"""zh_longdoc/laws: a law's purpose clause -> the full text of that law.

Source: ``laws/`` (LawRefBook/Laws, Markdown, one file per law, regulation, judicial
interpretation or guiding case). Most laws open with ``第一条 为了……`` (the law's purpose).
Query = that clause without its ``第一条`` label; it is removed from the document, so the
model has to match the purpose to the body. Document = the whole file as plain text (title
kept, Markdown heading marks and HTML comments dropped). Files without a purpose clause stay
in the corpus as distractors. Laws whose purpose clause is word for word the same (two
versions of one law) share one query with every version relevant.

Evidence position (``queries.jsonl``, see :mod:`evalkit.data.beir`): where the purpose clause
stood in the built document, a zero-width span at the start of the line that now follows it.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.data.beir import Evidence
from evalkit.data.store import RetrievalData
from evalkit.errors import DataError

VERSION = "2"  # 2: evidence positions (document texts unchanged)
PURPOSE = re.compile(r"^第一条[\s\u3000]+(为了[^\n]*?)\s*$", re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
SKIP_NAMES = {"README.md", "_index.md", "法律法规模版.md"}  # repo docs and the template, not laws


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "laws"]


def clean(text: str) -> str:
    text = COMMENT.sub("", text)
    text = re.sub(r"^#+\s*", "", text, flags=re.M)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def remove_span(text: str, start: int, end: int) -> tuple[str, int]:
    """``text`` without ``text[start:end]`` and the position where it stood. The blank lines
    around the cut are merged as :func:`clean` merges them (at most one blank line), so the
    result is what cleaning the file without that text gives; the position is the start of the
    line that follows the cut (the end of the text if nothing follows)."""
    head, tail = text[:start], text[end:]
    head_core, tail_core = head.rstrip("\n"), tail.lstrip("\n")
    newlines = min(2, len(head) - len(head_core) + len(tail) - len(tail_core)) if head_core and tail_core else 0
    return head_core + "\n" * newlines + tail_core, len(head_core) + newlines


def build(raw_dir: Path) -> RetrievalData:
    root = raw_dir / "laws"
    corpus, purpose_to_docs, evidence = [], {}, {}
    dropped = {"files_without_purpose_clause (kept as distractors)": 0}
    for path in law_files(raw_dir):
        text = clean(path.read_text(encoding="utf-8"))
        doc_id = path.relative_to(root).with_suffix("").as_posix()
        match = PURPOSE.search(text)
        if match:
            purpose = match.group(1).strip()
            text, pos = remove_span(text, match.start(), match.end())
            purpose_to_docs.setdefault(purpose, []).append(doc_id)
            evidence.setdefault(purpose, []).append(Evidence(doc_id, pos, pos, "removed"))
        else:
            dropped["files_without_purpose_clause (kept as distractors)"] += 1
        corpus.append((doc_id, text))
    return RetrievalData.from_groups(corpus, purpose_to_docs, dropped, evidence)


def law_files(raw_dir: Path) -> list[Path]:
    root = Path(raw_dir) / "laws"
    files = sorted(p for p in root.rglob("*.md") if p.name not in SKIP_NAMES)
    if not files:
        raise DataError(f"no law texts under {root} (set EVALKIT_RAW_DATA / paths.raw_data to the raw-data folder)")
    return files


def law_body(text: str) -> str:
    """Statute text without front matter, headings and HTML comments."""
    if "<!-- INFO END -->" in text:
        text = text.split("<!-- INFO END -->", 1)[1]
    lines = [ln.strip() for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln and not ln.startswith(("#", "<!--", "---")))
