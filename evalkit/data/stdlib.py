"""code_search/stdlib: first docstring paragraph -> the function's code, from Python's stdlib.

Source: the standard library of the running interpreter (``sysconfig`` "stdlib" path), parsed
with ``ast``; tests, idlelib, tkinter, lib2to3, turtledemo, ensurepip and site-packages are
skipped. Query = the first paragraph of a function's (or method's) docstring; document = the
function's source (decorators included) with the docstring removed, dedented. Dropped: queries
that contain the function's name (a lexical giveaway), queries under ``MIN_QUERY_WORDS``
words, bodies with fewer than ``MIN_BODY_LINES`` lines, and texts that occur more than once
(overridden methods often repeat a docstring). ``SAMPLE_SIZE`` functions are sampled with a
fixed seed; each is a query and its body the one relevant document. The Python version is part
of the cache key and the fingerprint: another interpreter builds another dataset.
"""

from __future__ import annotations

import ast
import inspect
import random
import sysconfig
import textwrap
from collections import Counter
from pathlib import Path

from evalkit.data.store import RetrievalData

VERSION = "1"
USES_PYTHON = True
SAMPLE_SIZE = 3000
SEED = 20240607
MIN_QUERY_WORDS = 4
MIN_BODY_LINES = 3
SKIP_DIRS = {"test", "tests", "idlelib", "tkinter", "lib2to3", "turtledemo", "ensurepip", "site-packages", "__pycache__", "dist-packages"}


def raw_paths(raw_dir: Path) -> list[Path]:
    return []  # reads the interpreter's own Lib/, no raw data


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.py") if not SKIP_DIRS.intersection(p.relative_to(root).parts[:-1]) and not p.name.startswith("test_")
    )


def first_paragraph(doc: str) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split())


def function_without_docstring(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
    doc = node.body[0]
    kept = lines[start : doc.lineno - 1] + lines[doc.end_lineno : node.end_lineno]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def functions(path: Path, root: Path):
    """(function id, query, document) for each documented function in ``path``."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    lines = source.splitlines()
    module = path.relative_to(root).with_suffix("").as_posix().replace("/", ".")
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=False)
        if not doc or not isinstance(node.body[0], ast.Expr):
            continue
        code = function_without_docstring(lines, node)
        yield f"{module}:{node.lineno}:{node.name}", node.name, first_paragraph(doc), code


def build(raw_dir: Path | None = None) -> RetrievalData:
    root = stdlib_dir()
    dropped: Counter = Counter()
    rows = []
    for path in source_files(root):
        for fid, name, query, code in functions(path, root):
            bare = name.strip("_").lower()
            if bare and bare in query.lower():
                dropped["query_contains_name"] += 1
            elif len(query.split()) < MIN_QUERY_WORDS:
                dropped["short_query"] += 1
            elif len([ln for ln in code.splitlines() if ln.strip()]) < MIN_BODY_LINES:
                dropped["short_body"] += 1
            else:
                rows.append((fid, query, code))
    q_count, c_count = Counter(r[1] for r in rows), Counter(r[2] for r in rows)
    unique = [r for r in rows if q_count[r[1]] == 1 and c_count[r[2]] == 1]
    dropped["repeated_text"] = len(rows) - len(unique)
    rng = random.Random(SEED)
    chosen = sorted(rng.sample(range(len(unique)), min(SAMPLE_SIZE, len(unique))))
    dropped["not_sampled"] = len(unique) - len(chosen)
    picked = [unique[i] for i in chosen]
    return RetrievalData(
        corpus=[(fid, code) for fid, _, code in picked],
        queries=[(f"q:{fid}", query) for fid, query, _ in picked],
        qrels=[(f"q:{fid}", fid, 1) for fid, _, _ in picked],
        dropped=dict(sorted(dropped.items())),
    )
