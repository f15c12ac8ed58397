"""Built datasets on disk: the in-memory shapes builders return, the BEIR layout they are
written in, and the build cache (rebuilt when a builder's version, the Python version for
``stdlib``, or the raw files change).

Layout of one built source, ``<cache_dir>/data/<builder>/``::

    corpus.jsonl  queries.jsonl  qrels/test.tsv     (retrieval: the BEIR layout users have)
    pairs.jsonl                                     (pairs: {"sentence1", "sentence2"} per line)
    build.json                                      (cache key, counts, fingerprint)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.data.beir import Evidence
from evalkit.errors import ConfigError, DataError

# Builder modules of evalkit.data. A spec names one as ``builder: <module>`` or, for a builder
# that makes several datasets from one recipe, ``builder: <module>:<arg>`` (``passkey:4096``):
# ``build(raw_dir, arg)`` then builds the one for that argument, cached in ``<module>-<arg>/``.
BUILDERS = ("laws", "laws_deep", "manpages", "drcd", "pydocs", "tatoeba", "stdlib", "cosqa", "passkey", "needle")


@dataclass
class RetrievalData:
    corpus: list[tuple[str, str]]  # (doc id, text), in the order written
    queries: list[tuple[str, str]]  # (query id, text)
    qrels: list[tuple[str, str, int]]  # (query id, doc id, relevance)
    dropped: dict[str, int] = field(default_factory=dict)  # builder-side filters: reason -> count
    extra: dict = field(default_factory=dict)  # facts for build.json (e.g. lengths in reference tokens)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)  # query id -> where its evidence sits

    @classmethod
    def from_groups(cls, corpus, query_to_docs: dict[str, list[str]], dropped: dict[str, int],
                    evidence: dict[str, list[Evidence]] | None = None) -> RetrievalData:
        """One query per distinct query text, relevant to every document that gave it; queries
        numbered in the order of their first document, so ids are deterministic. ``evidence``:
        query text -> positions (one per document that gave it)."""
        queries, qrels, positions = [], [], {}
        for n, (text, doc_ids) in enumerate(sorted(query_to_docs.items(), key=lambda kv: kv[1][0])):
            qid = f"q{n:04d}"
            queries.append((qid, text))
            qrels.extend((qid, d, 1) for d in doc_ids)
            if evidence and text in evidence:
                positions[qid] = evidence[text]
        return cls(corpus=corpus, queries=queries, qrels=qrels, dropped=dropped, evidence=positions)


@dataclass
class PairData:
    pairs: list[tuple[str, str]]  # (sentence1, sentence2): sentence2 is the translation of sentence1
    dropped: dict[str, int] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # e.g. pool size before sampling


def split_builder(name: str) -> tuple[str, str | None]:
    """``"passkey:4096"`` -> ``("passkey", "4096")``; ``"laws"`` -> ``("laws", None)``."""
    module, _, arg = name.partition(":")
    return module, (arg or None)


def builder_module(name: str):
    module, _ = split_builder(name)
    if module not in BUILDERS:
        from evalkit.errors import unknown_name

        raise unknown_name("data builder", module, list(BUILDERS))
    return importlib.import_module(f"evalkit.data.{module}")


def builder_needs(name: str, raw_dir: Path) -> list[str]:
    """What builder ``name`` reads, relative to the raw-data folder (files or folders)."""
    from evalkit.data.raw import relative_needs

    return relative_needs(builder_module(name).raw_paths(raw_dir), raw_dir)


def run_builder(name: str, raw_dir: Path | None):
    mod, (_, arg) = builder_module(name), split_builder(name)
    raw = Path(raw_dir) if raw_dir is not None else None
    return mod.build(raw) if arg is None else mod.build(raw, arg)


def built_folder_name(name: str) -> str:
    module, arg = split_builder(name)
    return module if arg is None else f"{module}-{arg}"


def write_built(data: RetrievalData | PairData, folder: Path) -> list[Path]:
    """Write ``data`` into ``folder`` (BEIR layout or pairs.jsonl); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, PairData):
        path = folder / "pairs.jsonl"
        _write_jsonl(path, ({"sentence1": a, "sentence2": b} for a, b in data.pairs))
        return [path]
    corpus, queries, qrels = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"
    _write_jsonl(corpus, ({"_id": i, "title": "", "text": t} for i, t in data.corpus))
    _write_jsonl(queries, (_query_row(i, t, data.evidence.get(i)) for i, t in data.queries))
    qrels.parent.mkdir(exist_ok=True)
    with qrels.open("w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d, s in data.qrels:
            f.write(f"{q}\t{d}\t{s}\n")
    return [corpus, queries, qrels]


def _query_row(qid: str, text: str, evidence: list[Evidence] | None) -> dict:
    row = {"_id": qid, "text": text}
    if evidence:
        row["evidence"] = [e.to_json() for e in evidence]
    return row


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def files_fingerprint(files: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
    return "sha256:" + h.hexdigest()[:16]


def raw_signature(paths: list[Path]) -> str:
    """Cheap signature of the raw inputs (relative names and sizes): a changed mirror rebuilds."""
    h = hashlib.sha256()
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise DataError(f"raw data missing: {root} (python -m evalkit.data pull all fetches it; "
                            "EVALKIT_RAW_DATA / paths.raw_data names another raw-data folder)")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in files:
            h.update(f"{p.relative_to(root.parent)}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def build_key(name: str, raw_dir: Path | None) -> dict:
    mod = builder_module(name)
    key = {"builder": name, "version": mod.VERSION}  # name includes the argument, if any
    if getattr(mod, "USES_PYTHON", False):
        key["python"] = sys.version.split()[0]
    if mod.raw_paths(raw_dir or Path()):
        if raw_dir is None:
            raise ConfigError(f"data builder {name!r} needs the raw-data folder (EVALKIT_RAW_DATA or paths.raw_data)")
        key["raw"] = raw_signature(mod.raw_paths(Path(raw_dir)))
    return key


def data_root(cache_dir: Path | None) -> Path:
    """``<cache_dir>/data``; without a cache folder, the one conf/paths/default.yaml gives."""
    if cache_dir is None:
        from evalkit.schema.tasks import PathsConfig

        cache_dir = PathsConfig.from_env().cache
    return Path(cache_dir) / "data"


def ensure_built(name: str, raw_dir: Path | None, cache_dir: Path | None, *, force: bool = False,
                 fetch=None) -> tuple[Path, dict]:
    """Folder with the built data of builder ``name`` and its build.json; builds if stale. The raw
    files it reads are verified against the sources lock first, and pulled if missing (``fetch``:
    a :class:`evalkit.data.pull.FetchSettings`; None: from the environment); ``raw_dir`` None is
    the default raw-data folder (``PathsConfig.raw``)."""
    from evalkit.data.raw import default_raw_dir, ensure_raw

    raw_dir = Path(raw_dir) if raw_dir is not None else default_raw_dir()
    ensure_raw(builder_needs(name, raw_dir), raw_dir, fetch, what=f"data builder {name!r}")
    key = build_key(name, raw_dir)
    root = data_root(cache_dir)
    folder = root / built_folder_name(name)
    meta_path = folder / "build.json"
    if not force and meta_path.exists():
        meta = _intact_build(folder, key)
        if meta is not None:
            return folder, meta
    try:
        return _build(name, key, raw_dir, root, folder)
    except (PermissionError, NotADirectoryError, FileExistsError) as exc:  # before any model loads: name the folder
        raise DataError(f"cannot write built task data under {root} ({exc.strerror}); set paths.cache_dir "
                        "(or EVALKIT_CACHE_DIR) to a folder you can write") from None


def _intact_build(folder: Path, key: dict) -> dict | None:
    """build.json for this key, if the files still hash to its fingerprint; else None (rebuild).
    A half-written or damaged folder (a crash, a disk problem, a hand edit) is named and rebuilt."""
    import logging

    log = logging.getLogger("evalkit.data")
    try:
        meta = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable build.json (%s); rebuilding", folder, exc)
        return None
    if meta.get("key") != key:
        return None
    files = [folder / "pairs.jsonl"] if meta.get("kind") == "pairs" else [
        folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    try:
        ok = files_fingerprint(files, extra=json.dumps(key, sort_keys=True)) == meta.get("fingerprint")
    except OSError:
        ok = False
    if not ok:
        log.warning("%s: built data is damaged or incomplete (files do not match build.json); rebuilding", folder)
        return None
    return meta


def _build(name: str, key: dict, raw_dir: Path | None, root: Path, folder: Path) -> tuple[Path, dict]:
    meta_path = folder / "build.json"
    t0 = time.perf_counter()
    data = run_builder(name, raw_dir)
    root.mkdir(parents=True, exist_ok=True)
    # Build in a temp folder and swap it in, so a crash or a parallel run never sees half a build.
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{folder.name}."))
    try:
        files = write_built(data, tmp)
        meta = {
            "key": key,
            "kind": "pairs" if isinstance(data, PairData) else "retrieval",
            "fingerprint": files_fingerprint(files, extra=json.dumps(key, sort_keys=True)),
            "counts": _counts(data),
            "dropped": data.dropped,
            "extra": getattr(data, "extra", {}),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }
        (tmp / "build.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = None
        if folder.exists():
            old = root / f".{folder.name}.old.{os.getpid()}"
            folder.rename(old)
        try:
            tmp.rename(folder)
        except OSError:  # a parallel run swapped its build in first: same key, same files
            if not meta_path.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, meta


def _counts(data) -> dict:
    if isinstance(data, PairData):
        return {"pairs": len(data.pairs)}
    return {"queries": len(data.queries), "documents": len(data.corpus), "qrels": len(data.qrels)}
