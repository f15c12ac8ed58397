"""Read task data in the BEIR layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``)
or as pairs (``pairs.jsonl``), checking it line by line.

Broken data stops with a :class:`~evalkit.errors.DataError` naming the file and line: a line
that is not JSON, not UTF-8, lacks ``_id``/``text``; a duplicate id; an empty corpus; a qrels
row that is malformed or names a document the corpus does not have (the query could never be
answered: that would silently lower the score). Rows that are safe to skip are skipped and
counted in ``skipped`` (reported in the result): qrels rows naming a query that
``queries.jsonl`` does not have (common: a qrels file for one split, queries of all splits),
queries with empty text, queries with no relevant document. If nothing is left to evaluate,
that is an error too: never a silent zero score.

A query may say where its evidence sits (built-in long-document subsets write it): an optional
``"evidence": [{"corpus-id": <doc>, "start": <char>, "end": <char>, "kind": <what>}]`` in its
``queries.jsonl`` line, one entry per relevant document, offsets into that document's ``text``
(what the model reads when the title is empty, as in every built subset). ``start == end``
marks where text was removed (the query itself, taken out of the document). The field stays
here: mteb gets the queries' ids and texts only (evalkit.tasks.spec_task).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import DataError


@dataclass(frozen=True)
class Evidence:
    """Where a query's evidence sits in one relevant document: ``text[start:end]`` of its
    ``text`` field; ``start == end``: the point the query's own text was removed from."""

    doc_id: str
    start: int
    end: int
    kind: str  # removed | paragraph | section: what the span is (the subset's data card says more)

    def to_json(self) -> dict:
        return {"corpus-id": self.doc_id, "start": self.start, "end": self.end, "kind": self.kind}


@dataclass
class RetrievalFiles:
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text), file order
    queries: dict[str, str]  # query id -> text, only queries with a relevant document
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    skipped: dict[str, int] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)  # query id -> positions, where given


def iter_jsonl(path: Path):
    """(line number, object) for each non-blank line; errors name file and line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    "convert the file to UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _id_and_text(path: Path, lineno: int, obj: dict) -> tuple[str, str]:
    doc_id = obj.get("_id", obj.get("id"))
    if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
        raise DataError(f"{path}:{lineno}: missing '_id'")
    text = obj.get("text")
    if not isinstance(text, str):
        raise DataError(f"{path}:{lineno}: missing 'text' (a string) for id {doc_id!r}")
    return str(doc_id), text


def read_corpus(path: Path) -> dict[str, tuple[str, str]]:
    corpus: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        doc_id, text = _id_and_text(path, lineno, obj)
        if doc_id in corpus:
            raise DataError(f"{path}:{lineno}: duplicate document id {doc_id!r} (first at line {first_line[doc_id]})")
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise DataError(f"{path}:{lineno}: 'title' must be a string")
        corpus[doc_id], first_line[doc_id] = (title, text), lineno
    if not corpus:
        raise DataError(f"{path}: the corpus is empty: no document to retrieve")
    return corpus


def read_queries(path: Path, skipped: Counter, evidence: dict | None = None) -> dict[str, str]:
    """Query id -> text; with ``evidence`` (a dict), also fills it: query id -> (line, [Evidence])."""
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        qid, text = _id_and_text(path, lineno, obj)
        if qid in first_line:
            raise DataError(f"{path}:{lineno}: duplicate query id {qid!r} (first at line {first_line[qid]})")
        first_line[qid] = lineno
        if not text.strip():
            skipped["queries_with_empty_text"] += 1
            continue
        queries[qid] = text
        if evidence is not None and obj.get("evidence") is not None:
            evidence[qid] = (lineno, _evidence_entries(path, lineno, obj["evidence"]))
    return queries


def _evidence_entries(path: Path, lineno: int, raw) -> list[Evidence]:
    where = f"{path}:{lineno}: 'evidence'"
    if not isinstance(raw, list):
        raise DataError(f"{where} must be a list of {{'corpus-id', 'start', 'end', 'kind'}} objects")
    out = []
    for i, e in enumerate(raw):
        ok = isinstance(e, dict) and isinstance(e.get("corpus-id"), str) and isinstance(e.get("kind", ""), str)
        ok = ok and all(isinstance(e.get(k), int) and not isinstance(e.get(k), bool) for k in ("start", "end"))
        if not ok:
            raise DataError(f"{where}[{i}]: expected {{'corpus-id': str, 'start': int, 'end': int, 'kind': str}}, got {e!r}")
        out.append(Evidence(e["corpus-id"], e["start"], e["end"], e.get("kind", "")))
    return out


def check_evidence(path: Path, evidence: dict, corpus: dict, qrels: dict) -> dict[str, list[Evidence]]:
    """Each position names a relevant document of its query and lies inside that document's text."""
    out = {}
    for qid, (lineno, entries) in evidence.items():
        if qid not in qrels:
            continue  # the query itself is skipped (no relevant document)
        for e in entries:
            if qrels[qid].get(e.doc_id, 0) <= 0:
                raise DataError(f"{path}:{lineno}: evidence names document {e.doc_id!r}, which is not relevant "
                                f"to query {qid!r} in the qrels (relevant: {sorted(qrels[qid])})")
            length = len(corpus[e.doc_id][1])
            if not 0 <= e.start <= e.end <= length:
                raise DataError(f"{path}:{lineno}: evidence span [{e.start}, {e.end}) of {e.doc_id!r} is outside "
                                f"its text (0 to {length} characters)")
        out[qid] = entries
    return out


def read_qrels(path: Path, corpus: dict, queries: dict, skipped: Counter) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (qrels: 'query-id<TAB>corpus-id<TAB>score' per line)")
    qrels: dict[str, dict[str, int]] = {}
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) == 4:  # TREC style: qid 0 docid score
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise DataError(f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}")
            qid, doc_id, score = (p.strip() for p in parts)
            try:
                relevance = int(float(score))
            except ValueError:
                if lineno == 1:  # header row
                    continue
                raise DataError(f"{path}:{lineno}: score {score!r} is not a number") from None
            if qid not in queries:
                skipped["qrels_rows_for_unknown_query"] += 1
                continue
            if doc_id not in corpus:
                raise DataError(
                    f"{path}:{lineno}: query {qid!r} names document {doc_id!r}, which the corpus does not have"
                )
            if doc_id in qrels.get(qid, {}):
                raise DataError(f"{path}:{lineno}: duplicate qrels row for query {qid!r} and document {doc_id!r}")
            qrels.setdefault(qid, {})[doc_id] = relevance
    return qrels


def read_retrieval(folder: Path, split: str = "test") -> RetrievalFiles:
    folder = Path(folder)
    skipped: Counter = Counter()
    corpus = read_corpus(folder / "corpus.jsonl")
    evidence: dict = {}
    queries = read_queries(folder / "queries.jsonl", skipped, evidence)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qrels_path, corpus, queries, skipped)
    answerable = {q for q, docs in qrels.items() if any(s > 0 for s in docs.values())}
    kept = {q: t for q, t in queries.items() if q in answerable}
    if len(kept) < len(queries):
        skipped["queries_without_relevant_document"] += len(queries) - len(kept)
    if not kept:
        raise DataError(
            f"{qrels_path}: no query in {folder / 'queries.jsonl'} has a relevant document (score > 0): "
            "nothing to evaluate"
        )
    kept_qrels = {q: qrels[q] for q in kept}
    positions = check_evidence(folder / "queries.jsonl", evidence, corpus, kept_qrels)
    return RetrievalFiles(corpus=corpus, queries=kept, qrels=kept_qrels, skipped=dict(skipped), evidence=positions)


def read_pairs(path: Path) -> tuple[list[str], list[str]]:
    s1, s2 = [], []
    for lineno, obj in iter_jsonl(path):
        a, b = obj.get("sentence1"), obj.get("sentence2")
        if not isinstance(a, str) or not isinstance(b, str):
            raise DataError(f"{path}:{lineno}: expected {{'sentence1': str, 'sentence2': str}}")
        s1.append(a)
        s2.append(b)
    if not s1:
        raise DataError(f"{path}: no pairs")
    return s1, s2
