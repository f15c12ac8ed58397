"""zh_passkey / zh_needle data (evalkit/data/{passkey,needle,haystack}.py) built from the real raw
data: LongEmbed's shape, exact lengths in the reference tokenizer (counted here straight with
the ``tokenizers`` library), the inserted facts, determinism across processes, specs and CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.data import beir, needle, store
from evalkit.errors import ConfigError
from tests.fixtures.builtin_data import REPO, raw_dir  # noqa: F401  (fixture)

SHORT = ("256", "1024")  # the fast lengths; all eight are built in the slow test
# name in characters, its pinyin in brackets, the code; the same name and code repeated
PASSKEY = re.compile(r"(\w{3})（([A-Z][a-zü]+ [A-Z][a-zü]+)）的通行码是 (\d{5})。请记住，\3 是\1（\2）的通行码。")


@pytest.fixture(scope="module")
def cache(tmp_path_factory, raw_dir):  # noqa: F811
    cache = tmp_path_factory.mktemp("longctx_cache")
    for module in ("passkey", "needle"):
        for length in SHORT:
            store.ensure_built(f"{module}:{length}", raw_dir, cache)
    return cache


def _read(cache: Path, builder: str):
    return beir.read_retrieval(cache / "data" / store.built_folder_name(builder))


def _reference_counts(texts: list[str]) -> list[int]:
    """Token counts straight from the tokenizers library (not the builder's cached line counts)."""
    from tokenizers import Tokenizer

    from evalkit.data.stats import tokenizers_available

    tok = Tokenizer.from_file(str(tokenizers_available()["qwen"]))
    return [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]


def _check_shape(data) -> None:
    assert len(data.corpus) == 100 and len(data.queries) == 50 and not data.skipped
    assert all(len(docs) == 1 and list(docs.values()) == [1] for docs in data.qrels.values())
    targets = [next(iter(docs)) for docs in data.qrels.values()]
    assert len(set(targets)) == 50  # 50 different target documents; the other 50 are distractors


@pytest.mark.parametrize("module", ["passkey", "needle"])
@pytest.mark.parametrize("length", SHORT)
def test_shape_and_exact_reference_lengths(cache, module, length):
    data = _read(cache, f"{module}:{length}")
    _check_shape(data)
    assert set(_reference_counts([text for _, text in data.corpus.values()])) == {int(length)}
    meta = json.loads((cache / "data" / f"{module}-{length}" / "build.json").read_text(encoding="utf-8"))
    assert meta["extra"]["max_abs_length_error_tokens"] == 0 and meta["extra"]["haystack_windows_disjoint"]
    assert meta["extra"]["document_reference_tokens"] == {"min": int(length), "median": int(length), "max": int(length)}


@pytest.mark.parametrize("length", SHORT)
def test_passkey_each_code_only_in_its_target(cache, length):
    data = _read(cache, f"passkey:{length}")
    found = {doc_id: PASSKEY.findall(text) for doc_id, (_, text) in data.corpus.items()}
    assert all(len(m) == 1 for m in found.values())  # one passkey sentence per document
    people = {doc_id: (m[0][0], m[0][2]) for doc_id, m in found.items()}
    names = [n for n, _ in people.values()]
    codes = [c for _, c in people.values()]
    assert len(set(names)) == 100 and len(set(codes)) == 100
    assert len({m[0][1] for m in found.values()}) == 100  # unique in pinyin too
    for qid, query in data.queries.items():
        written = query.removesuffix("的通行码是多少？")
        name = written.split("（")[0]
        assert len(name) == 3 and written.endswith("）")
        (target,) = data.qrels[qid]
        assert people[target][0] == name
        code = people[target][1]
        holders = [d for d, (_, text) in data.corpus.items() if code in text or name in text]
        assert holders == [target]


@pytest.mark.parametrize("length", SHORT)
def test_needle_query_is_the_drcd_question_and_its_answer_sentence_is_in_the_target(cache, raw_dir, length):  # noqa: F811
    data = _read(cache, f"needle:{length}")
    qas = {}
    for split in ("dev", "test"):
        for article in json.loads((raw_dir / "drcd" / f"DRCD_{split}.json").read_text(encoding="utf-8"))["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    qas[qa["id"]] = (qa["question"].strip(), qa["answers"][0], para["context"])
    for qid, query in data.queries.items():
        question, answer, context = qas[qid.split("-", 1)[1]]
        assert query == question
        start, end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        # the sentence around the answer: from after the previous 。！？ to the next one (closing quotes kept)
        a = max(context.rfind(c, 0, start) for c in "。！？") + 1
        while context[a] in "」』”）":
            a += 1
        b = min((i for i in (context.find(c, end) for c in "。！？") if i >= 0), default=len(context) - 1) + 1
        while b < len(context) and context[b] in "。！？」』”）":
            b += 1
        sentence = context[a:b].strip()
        assert answer["text"] in sentence
        (target,) = data.qrels[qid]
        holders = [d for d, (_, text) in data.corpus.items() if sentence in text]
        assert holders == [target]
        # not a near-copy: at most half of the question's CJK bigrams are in the sentence
        bigrams = {x + y for x, y in zip(question, question[1:]) if re.fullmatch(r"[\u4e00-\u9fff]{2}", x + y)}
        assert len({g for g in bigrams if g in sentence}) <= 0.5 * len(bigrams)


def test_needle_every_document_carries_one_needle(cache, raw_dir):  # noqa: F811
    data = _read(cache, "needle:256")
    needles, _, _ = needle.pick_needles(str(raw_dir))
    assert len({n["sentence"] for n in needles}) == 100
    holders = sorted(d for n in needles for d, (_, text) in data.corpus.items() if n["sentence"] in text)
    assert holders == sorted(data.corpus)  # each document holds exactly one of the 100 sentences


def test_two_builds_in_fresh_processes_are_byte_identical(cache, raw_dir, tmp_path):  # noqa: F811
    script = (
        "import sys; from pathlib import Path; from evalkit.data import store\n"
        "for b in ('passkey:256', 'needle:256'): store.ensure_built(b, Path(sys.argv[1]), Path(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script, str(raw_dir), str(tmp_path)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for folder in ("passkey-256", "needle-256"):
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            assert (tmp_path / "data" / folder / name).read_bytes() == (cache / "data" / folder / name).read_bytes()


def test_builder_without_a_valid_length_names_the_form(raw_dir, tmp_path):  # noqa: F811
    for bad in ("passkey", "passkey:abc", "needle:64"):
        with pytest.raises(ConfigError, match=r"'builder: (passkey|needle):<N>'"):
            store.ensure_built(bad, raw_dir, tmp_path)


def test_specs_and_cli_list(cache, raw_dir):  # noqa: F811
    from evalkit.tasks.spec import builtin_spec

    for task, module in (("zh_passkey", "passkey"), ("zh_needle", "needle")):
        spec, _ = builtin_spec(task)
        assert spec.type == "Retrieval" and spec.main_metric == "ndcg_at_1" and spec.instruction
        assert {s: sub.builder for s, sub in spec.subset_specs().items()} == {n: f"{module}:{n}" for n in store.builder_module(module).ARGS}
        assert (REPO / "tasks" / f"{task}.md").read_text(encoding="utf-8").count(f"python -m evalkit.data info {task}") >= 1
    env = {"EVALKIT_RAW_DATA": str(raw_dir), "EVALKIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "evalkit.data", "list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith(("zh_passkey", "zh_needle"))]
    assert len(rows) == 16 and sum("sha256:" in r for r in rows) == 4  # the four lengths built above


@pytest.mark.slow
def test_all_lengths_exact_and_disjoint(raw_dir, tmp_path):  # noqa: F811
    for module in ("passkey", "needle"):
        for length in store.builder_module(module).ARGS:
            folder, meta = store.ensure_built(f"{module}:{length}", raw_dir, tmp_path)
            data = beir.read_retrieval(folder)
            _check_shape(data)
            assert set(_reference_counts([t for _, t in data.corpus.values()])) == {int(length)}
            assert meta["extra"]["haystack_windows_disjoint"]
