"""code_search/cosqa: real web queries -> Python functions (CoSQA retrieval, test-500).

Source: ``cosqa/cosqa-retrieval-test-500.json`` (500 queries, each with the ``retrieval_idx``
of its gold function) and ``cosqa/code_idx_map.txt`` (JSON: function source -> index; the
6,267-function corpus of CoCLR's code-search evaluation). Documents are the functions as
given (docstrings included, as in the benchmark), ids ``c<index>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.data.store import RetrievalData
from evalkit.errors import DataError

VERSION = "1"


def raw_paths(raw_dir: Path) -> list[Path]:
    return [raw_dir / "cosqa" / "cosqa-retrieval-test-500.json", raw_dir / "cosqa" / "code_idx_map.txt"]


def build(raw_dir: Path) -> RetrievalData:
    p_queries, p_corpus = raw_paths(raw_dir)
    code_to_idx = json.loads(p_corpus.read_text(encoding="utf-8"))
    corpus = sorted(((idx, code) for code, idx in code_to_idx.items()), key=lambda x: x[0])
    ids = {idx for idx, _ in corpus}
    queries, qrels, seen = [], [], set()
    for n, row in enumerate(json.loads(p_queries.read_text(encoding="utf-8"))):
        if row["retrieval_idx"] not in ids:
            raise DataError(f"{p_queries}: entry {n} ({row['idx']}) names function {row['retrieval_idx']}, not in {p_corpus}")
        if row["idx"] in seen:
            raise DataError(f"{p_queries}: entry {n}: duplicate query id {row['idx']}")
        seen.add(row["idx"])
        queries.append((row["idx"], row["doc"]))
        qrels.append((row["idx"], f"c{row['retrieval_idx']}", 1))
    return RetrievalData(corpus=[(f"c{i}", code) for i, code in corpus], queries=queries, qrels=qrels)
