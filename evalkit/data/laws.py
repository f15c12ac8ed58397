"""zh_longdoc/laws: a law's purpose clause -> the full text of that law.

Source: ``laws/`` (LawRefBook/Laws, Markdown, one file per law, regulation, judicial
interpretation or guiding case). Most laws open with ``第一条 为了……`` (the law's purpose).
Query = that clause without its ``第一条`` label; it is removed from the document, so the
model has to match the purpose to the body. Document = the whole file as plain text (title
kept, Markdown heading marks and HTML comments dropped). Files without a purpose clause stay
in the corpus as distractors. Laws whose purpose clause is word for word the same (two
versions of one law) share one query with every version relevant.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.data.store import RetrievalData
from evalkit.errors import DataError

VERSION = "1"
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


def build(raw_dir: Path) -> RetrievalData:
    root = raw_dir / "laws"
    files = law_files(raw_dir)
    corpus, purpose_to_docs = [], {}
    dropped = {"files_without_purpose_clause (kept as distractors)": 0}
    for path in files:
        text = path.read_text(encoding="utf-8")
        doc_id = path.relative_to(root).with_suffix("").as_posix()
        match = PURPOSE.search(text)
        if match:
            purpose = match.group(1).strip()
            text = text[: match.start()] + text[match.end() :]
            purpose_to_docs.setdefault(purpose, []).append(doc_id)
        else:
            dropped["files_without_purpose_clause (kept as distractors)"] += 1
        corpus.append((doc_id, clean(text)))
    return RetrievalData.from_groups(corpus, purpose_to_docs, dropped)


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
