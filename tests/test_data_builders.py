"""Builders from the real raw data: what each subset contains, determinism, the build cache, stats."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evalkit.data import beir, manpages, stats, store
from tests.fixtures.builtin_data import REPO, data_cache, raw_dir  # noqa: F401  (fixtures)


def _retrieval(cache, name):
    return beir.read_retrieval(cache / "data" / name)


def _pairs(cache, name):
    return beir.read_pairs(cache / "data" / name / "pairs.jsonl")


def test_laws_query_is_the_purpose_clause_removed_from_its_law(data_cache):
    d = _retrieval(data_cache, "laws")
    assert len(d.queries) > 500 and len(d.corpus) > 1000
    for qid, text in list(d.queries.items())[:200]:
        assert text.startswith("为了")
        for doc_id in d.qrels[qid]:
            assert text not in d.corpus[doc_id][1]  # removed, so the match must be by meaning
    assert max(len(t) for _, t in d.corpus.values()) > 30_000


def test_manpages_documents_are_plain_text_without_name(data_cache):
    d = _retrieval(data_cache, "manpages")
    assert len(d.queries) > 500
    assert all(re.search(r"[\u4e00-\u9fff]", q) for q in d.queries.values())
    docs = [t for _, t in d.corpus.values()]
    # a few pages document roff itself (a literal "\\fR" in the text is content, not markup)
    assert sum(bool(re.search(r"\\f[BIRP]", t)) for t in docs) < 0.02 * len(docs)
    # (man.7 explains the macros, so a line may start with ".SH" as content: allow that one page)
    assert sum(bool(re.search(r"^\.(SH|TP|PP|B|I)\b", t, re.M)) for t in docs) <= 1
    assert not any("中文版维护人" in t or "手册页翻译计划" in t for t in docs)
    cp = next(qid for qid, docs in d.qrels.items() if "man1/cp.1" in docs)
    assert d.queries[cp] == "复制文件和目录"
    assert "复制文件和目录" not in d.corpus["man1/cp.1"][1]


def test_roff_to_text_strips_markup():
    src = '.TH CP 1\n.SH NAME\ncp \\- 复制文件\n.SH 描述\n.B cp\n\\fB\\-a\\fP, \\fB\\-\\-archive\\fR\n.BR ls (1)\n.\\" a comment\n'
    text = manpages.roff_to_text(src)
    assert text == "NAME\ncp - 复制文件\n\n描述\ncp\n-a, --archive\nls(1)"
    assert manpages.parse_page(src.encode()) == ("复制文件", "描述\ncp\n-a, --archive\nls(1)")


def test_drcd_questions_ask_about_whole_articles_over_1000_chars(data_cache, raw_dir):
    d = _retrieval(data_cache, "drcd")
    paragraphs = {}  # article id -> lengths of its paragraphs (split between dev and test), from the raw files
    for split in ("dev", "test"):
        for art in json.loads((raw_dir / "drcd" / f"DRCD_{split}.json").read_text(encoding="utf-8"))["data"]:
            paragraphs.setdefault(f"drcd-{art['id']}", []).extend(len(p["context"].strip()) for p in art["paragraphs"])
    length = {doc: sum(n) + 2 * (len(n) - 1) for doc, n in paragraphs.items()}  # joined by blank lines
    asked = {doc for docs in d.qrels.values() for doc in docs}
    assert set(d.corpus) == set(length) and len(asked) == 239  # every article; questions on the long ones
    assert all(length[doc] >= 1000 for doc in asked) and all(length[doc] < 1000 for doc in set(length) - asked)
    assert len(d.queries) == 5 * len(asked) and all(len(v) == 1 for v in d.qrels.values())


def test_stdlib_queries_never_name_their_function(data_cache):
    d = _retrieval(data_cache, "stdlib")
    assert len(d.queries) > 1000
    for qid, query in d.queries.items():
        (doc_id,) = d.qrels[qid]
        name = doc_id.rsplit(":", 1)[1].strip("_").lower()
        assert not name or name not in query.lower()
        assert query not in d.corpus[doc_id][1]  # docstring removed from the code


def test_pairs_subsets(data_cache):
    s1, s2 = _pairs(data_cache, "pydocs")
    assert len(s1) == 4000 and len(set(s1)) == len(s1) and len(set(s2)) == len(s2)
    assert all(re.search(r"[\u4e00-\u9fff]", a) and re.search(r"[A-Za-z]{2}", a) for a in s1)
    t1, t2 = _pairs(data_cache, "tatoeba")
    raw1 = (REPO.parent / "shared/data/raw/tatoeba/tatoeba.cmn-eng.cmn")
    assert len(t1) == 1000 and (not raw1.exists() or t1 == raw1.read_text(encoding="utf-8").splitlines())


def test_cosqa_counts(data_cache):
    d = _retrieval(data_cache, "cosqa")
    assert (len(d.queries), len(d.corpus)) == (500, 6267)


def test_build_is_deterministic_and_cached(data_cache, raw_dir, tmp_path, monkeypatch):
    folder, meta = store.ensure_built("drcd", raw_dir, data_cache)
    mtime = (folder / "build.json").stat().st_mtime_ns
    assert store.ensure_built("drcd", raw_dir, data_cache)[1] == meta  # cache hit
    assert (folder / "build.json").stat().st_mtime_ns == mtime
    _, fresh = store.ensure_built("drcd", raw_dir, tmp_path)  # another cache, same bytes
    assert fresh["fingerprint"] == meta["fingerprint"]
    from evalkit.data import drcd

    monkeypatch.setattr(drcd, "VERSION", "test-bump")
    _, rebuilt = store.ensure_built("drcd", raw_dir, tmp_path)
    assert rebuilt["key"]["version"] == "test-bump" and rebuilt["fingerprint"] != meta["fingerprint"]


def test_stdlib_key_has_python_version(data_cache):
    meta = json.loads((data_cache / "data" / "stdlib" / "build.json").read_text())
    assert meta["key"]["python"] == sys.version.split()[0]


def test_stats_long_documents_and_baseline(data_cache):
    folder = data_cache / "data" / "tatoeba"
    st = stats.subset_stats(folder, "pairs")
    assert st["pairs"] == 1000 and 0 <= st["lexical_baseline"]["bm25_accuracy"] < 0.2
    assert "minilm_tokens" in st["sentence1"]
    # BM25 finds an exact lexical match and nDCG is 1 for it
    scores = stats.bm25_scores([["apple", "pie"]], [["banana"], ["apple", "pie", "recipe"], ["pie"]])
    assert scores.argmax() == 1 and stats.ndcg_at_10(scores, [{1}]) == pytest.approx(1.0)


def test_data_cli_list_and_build(data_cache, raw_dir):
    env = {"EVALKIT_RAW_DATA": str(raw_dir), "EVALKIT_CACHE_DIR": str(data_cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "evalkit.data", "list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "zh_longdoc" in out.stdout and "sha256:" in out.stdout
    out = subprocess.run([sys.executable, "-m", "evalkit.data", "build", "nope"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "zh_longdoc" in out.stderr
