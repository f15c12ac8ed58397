"""Evidence positions of zh_longdoc (issue 21, data side): the recorded span is where the evidence
is (or was) in the built document, checked against the raw files; laws_deep's depth strata,
counted again with the tokenizers library; near-copies never queried; deterministic builds; the
BEIR reader's checks of the field; the validity checks (BM25 and title-only by depth)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from evalkit.data import beir, drcd, laws, laws_deep, stats, store, validity
from evalkit.errors import DataError

# a small laws mirror: a long law with deep articles (刑法) and an amendment quoting some of them,
# two versions of one law, Hong Kong's and Macao's twin laws, and a few ordinary ones
SMALL_LAWS = ["刑法/刑法.md", "刑法/刑法修正案（十一）.md", "民法商法/公司法(2018-10-26).md",
              "民法商法/公司法(2023-12-29).md", "宪法相关法/香港特别行政区驻军法(1996-12-30).md",
              "宪法相关法/澳门特别行政区驻军法(1999-06-28).md", "经济法/政府采购法(2014-08-31).md",
              "行政法规/不动产登记暂行条例(2019-03-24).md", "行政法规/专利法实施细则(2010-01-09).md"]
VERSIONED = ("民法商法/公司法(2018-10-26)", "民法商法/公司法(2023-12-29)",
             "宪法相关法/香港特别行政区驻军法(1996-12-30)", "宪法相关法/澳门特别行政区驻军法(1999-06-28)")
LABEL = re.compile(r"^第[零一二三四五六七八九十百千〇两]+条(?:之[一二三四五六七八九十]+)?[ \t\u3000]+", re.M)


def _qwen_counts(texts: list[str]) -> list[int]:
    """Token counts straight from the tokenizers library (not the builder's offsets arithmetic)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(stats.tokenizers_available()["qwen"]))
    return [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory, raw_dir):
    root = tmp_path_factory.mktemp("small_raw")
    for name in SMALL_LAWS:
        (root / "laws" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw_dir / "laws" / name, root / "laws" / name)
    return root


def _build_small(raw: Path, folder: Path) -> dict:
    """laws_deep from a few laws, written as the store writes it. Not through store.ensure_built:
    that checks the raw folder against the sources lock, which a part of the laws cannot pass."""
    data = laws_deep.build(raw)
    files = store.write_built(data, folder)
    return {"fingerprint": store.files_fingerprint(files, extra=""), "dropped": data.dropped, "extra": data.extra}


@pytest.fixture(scope="module")
def small_deep(small_raw, tmp_path_factory):
    """laws_deep built from the small mirror, 6 articles per depth bucket (the patch is undone at
    once, so no other build in the session sees it)."""
    folder = tmp_path_factory.mktemp("deep_cache") / "laws_deep"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(laws_deep, "PER_BUCKET", 6)
        meta = _build_small(small_raw, folder)
    return folder, meta, beir.read_retrieval(folder)


def _article_bodies(gap: str) -> list[str]:
    """The articles in a piece of the original law, as queries are written (label off, lines joined)."""
    pieces = [p for p in LABEL.split(gap) if p.strip()]
    return ["\n".join(ln.strip() for ln in p.split("\n") if ln.strip()) for p in pieces]


def test_laws_deep_positions_are_where_the_articles_were(small_deep, small_raw):
    _, _, data = small_deep
    by_doc: dict[str, list[tuple[int, str]]] = {}
    for qid, (e,) in data.evidence.items():
        assert e.kind == "removed" and e.start == e.end and list(data.qrels[qid]) == [e.doc_id]
        by_doc.setdefault(e.doc_id, []).append((e.start, data.queries[qid]))
    for doc_id, placed in by_doc.items():
        built = data.corpus[doc_id][1]
        original = laws.clean((small_raw / "laws" / f"{doc_id}.md").read_text(encoding="utf-8"))
        cuts = sorted({p for p, _ in placed})
        segments = [built[a:b] for a, b in zip([0, *cuts], [*cuts, len(built)])]
        cursor = 0
        for i, segment in enumerate(segments):
            found = original.find(segment, cursor)
            assert found >= 0 and (i > 0 or found == 0), f"{doc_id}: built text not a piece of the law"
            if i > 0:  # what the law had at this cut: exactly the articles whose queries point here
                gap = original[cursor:found]
                assert Counter(_article_bodies(gap)) == Counter(q for p, q in placed if p == cuts[i - 1])
                assert built[cuts[i - 1] - 1] == "\n" and LABEL.match(gap)  # at a line start, an article
            cursor = found + len(segment)
        assert cursor == len(original)


def test_laws_deep_strata_by_independent_token_count(small_deep):
    folder, meta, data = small_deep
    depths = dict(zip(data.evidence, _qwen_counts(
        [data.corpus[e.doc_id][1][: e.start] for (e,) in data.evidence.values()])))
    counts = Counter(validity.depth_bucket(d) for d in depths.values())
    assert dict(counts) == {k: v for k, v in meta["extra"]["queries_by_depth"].items() if v}
    assert max(depths.values()) <= 32768 and set(counts) == {"≤512", "512–2k", "2k–8k", "8k–32k"}
    eligible = meta["extra"]["eligible_articles_by_depth"]
    assert len(data.queries) == sum(min(6, n) for n in eligible.values())  # 6 per bucket where there are 6
    for label, n in meta["extra"]["queries_by_depth"].items():
        # removing shallower articles of the same law can move a query up a bucket: a few at most
        assert abs(n - min(6, eligible[label])) <= 2
    # one law at a time: the shallow ones spread evenly over the laws
    shallow = Counter(next(iter(data.qrels[q])) for q, d in depths.items() if d <= 512)
    assert len(shallow) >= 3 and max(shallow.values()) - min(shallow.values()) <= 1
    # queries alternate buckets, so task.limit=4 takes one of each depth
    assert len({validity.depth_bucket(depths[q]) for q in list(data.queries)[:4]}) == 4


def test_laws_deep_never_queries_near_copies_or_versions(small_deep):
    _, meta, data = small_deep
    queried = {d for docs in data.qrels.values() for d in docs}
    assert not queried & set(VERSIONED)
    flat = {d: re.sub(r"[\W_]+", "", t) for d, (_, t) in data.corpus.items()}
    for qid, text in data.queries.items():
        body = re.sub(r"[\W_]+", "", text)
        assert laws_deep.MIN_CHARS <= len(text) <= laws_deep.MAX_CHARS
        assert not any(body in t for d, t in flat.items() if d not in data.qrels[qid])  # no copy elsewhere
    assert meta["dropped"]["articles_near_copy_of_another_article"] > 0  # the amendment's articles
    assert meta["dropped"]["articles_law_has_another_version_or_twin"] > 0


def test_laws_deep_build_is_deterministic(small_deep, small_raw, tmp_path, monkeypatch):
    folder, meta, _ = small_deep
    monkeypatch.setattr(laws_deep, "PER_BUCKET", 6)
    again = tmp_path / "laws_deep"
    meta2 = _build_small(small_raw, again)
    assert meta2["fingerprint"] == meta["fingerprint"]
    assert (again / "queries.jsonl").read_bytes() == (folder / "queries.jsonl").read_bytes()


def test_laws_purpose_clause_position(data_cache, raw_dir):
    data = beir.read_retrieval(data_cache / "data" / "laws")
    assert set(data.evidence) == set(data.queries)
    for qid in list(data.queries)[:150]:
        for e in data.evidence[qid]:
            built = data.corpus[e.doc_id][1]
            original = laws.clean((raw_dir / "laws" / f"{e.doc_id}.md").read_text(encoding="utf-8"))
            line = next(ln for ln in original.split("\n") if ln.startswith("第一条") and data.queries[qid] in ln)
            assert e.start == e.end and built[: e.start] + line + "\n\n" + built[e.start :] == original


def test_drcd_positions_are_answer_paragraphs_without_the_answer(data_cache, raw_dir):
    data = beir.read_retrieval(data_cache / "data" / "drcd")
    raw = {qa["id"]: (para["context"], qa["answers"][0]) for split in drcd.SPLITS
           for art in json.loads((raw_dir / "drcd" / f"DRCD_{split}.json").read_text(encoding="utf-8"))["data"]
           for para in art["paragraphs"] for qa in para["qas"]}
    assert set(data.evidence) == set(data.queries)
    for qid, (e,) in data.evidence.items():
        text, (context, answer) = data.corpus[e.doc_id][1], raw[qid]
        assert text[e.start - 2 : e.start] == "\n\n" or e.start == e.end == len(text)  # a paragraph's start
        assert text[e.end : e.end + 2] in ("\n\n", "") or e.start == e.end
        rest = iter(context)  # what is left of the paragraph: its characters in order, less some
        assert all(c in rest for c in text[e.start : e.end])
        a = answer["answer_start"]
        start = max(context.rfind(c, 0, a) for c in "。！？") + 1
        ends = [i for i in (context.find(c, a + len(answer["text"]) - 1) for c in "。！？") if i >= 0]
        sentence = context[start : min(ends) + 1 if ends else len(context)].strip()
        assert answer["text"] in sentence and sentence not in text  # the answer's sentence is gone
    assert Counter(e.kind for (e,) in data.evidence.values())["paragraph"] > 0.99 * len(data.queries)
    assert len(data.corpus) > 500 and min(len(t) for _, t in data.corpus.values()) < 1000  # distractors


def test_manpages_position_is_the_description_section(data_cache):
    data = beir.read_retrieval(data_cache / "data" / "manpages")
    cp = next(qid for qid, docs in data.qrels.items() if "man1/cp.1" in docs)
    (e,) = data.evidence[cp]
    span = data.corpus["man1/cp.1"][1][e.start : e.end]
    assert e.kind == "section" and span.startswith("描述") and "\n\n" not in span.strip()[-3:]
    kinds = Counter(x.kind for es in data.evidence.values() for x in es)
    assert kinds["section"] > 0.95 * sum(kinds.values())


def _tiny_beir(folder: Path, evidence) -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "abcdef"}) + "\n"
                                         + json.dumps({"_id": "d2", "text": "xyz"}) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "q", "evidence": evidence}) + "\n",
                                          encoding="utf-8")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    return folder


def test_reader_checks_evidence(tmp_path):
    ok = beir.read_retrieval(_tiny_beir(tmp_path / "ok", [{"corpus-id": "d1", "start": 2, "end": 4, "kind": "span"}]))
    assert ok.evidence == {"q1": [beir.Evidence("d1", 2, 4, "span")]}
    cases = [([{"corpus-id": "d1", "start": 2, "end": 9}], "outside its text (0 to 6"),
             ([{"corpus-id": "d2", "start": 0, "end": 1}], "'d2', which is not relevant"),
             ([{"corpus-id": "d1", "start": "2", "end": 4}], "queries.jsonl:1: 'evidence'[0]"),
             ({"corpus-id": "d1"}, "must be a list")]
    for i, (evidence, message) in enumerate(cases):
        with pytest.raises(DataError, match=re.escape(message)):
            beir.read_retrieval(_tiny_beir(tmp_path / f"bad{i}", evidence))


def test_validity_checks_by_depth(data_cache):
    folder = data_cache / "data" / "drcd"
    checks = validity.depth_checks(folder)
    buckets = {k: v for k, v in checks.items() if k != "all"}
    assert sum(v["queries"] for v in buckets.values()) == checks["all"]["queries"] == 1195
    for key in ("bm25_ndcg_at_10", "title_only_bm25_ndcg_at_10"):  # buckets weigh up to the whole
        mean = sum(v[key] * v["queries"] for v in buckets.values()) / checks["all"]["queries"]
        assert abs(mean - checks["all"][key]) < 1e-3
    assert abs(checks["all"]["bm25_ndcg_at_10"] - stats.retrieval_baseline(folder)["bm25_ndcg_at_10"]) < 1e-4
    data = beir.read_retrieval(folder)
    title, text = next(iter(data.corpus.values()))
    short = validity.title_only(title, text)
    assert short.split("\n")[0] == text.split("\n")[0]  # the article's title line
    assert _qwen_counts([short.split("\n", 1)[1]])[0] <= validity.TITLE_TOKENS + 1
