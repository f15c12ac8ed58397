"""SLURM without a cluster: what a sweep on a cluster relies on and the test cluster cannot show
(tests/test_slurm.py runs the cluster): shards stable across interpreters, the launcher's
settings checked before anything reaches sbatch, the queue watcher's branches for jobs that can
never start and a scheduler that stops answering, and the exit submitit makes mid-task when it
requeues a job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.callbacks.base import Callback
from evalkit.runner import run
from tests.fixtures.slurm_jobs import fresh_cache, manifest_task, part_keys, stores
from tests.helpers import REPO, make_job


def test_an_exit_mid_task_keeps_the_shard_vectors_and_files_no_failure(tmp_path, data_cache):
    """What submitit does on SIGUSR2 after requeueing the job: ``sys.exit(-1)`` from a signal
    handler, in the middle of a task. The shard store writes what it holds on the way out (no
    part was due yet: commit_s is an hour), no failure is filed, and the rerun encodes the rest."""
    class Exit(Callback):
        def __init__(self):
            self.texts = []

        def on_batch_end(self, report):
            self.texts.append(report.n_texts)
            if len(self.texts) == 3:
                sys.exit(-1)

    cache = fresh_cache(tmp_path, data_cache)
    encode = {"shard": "1/2", "max_batch_texts": 4, "cache_commit_s": 3600}
    exit_ = Exit()
    with pytest.raises(SystemExit):
        run(make_job(tmp_path, ["STSBenchmark"], cache_dir=cache, encode=encode, limit=40), [exit_])
    (store,) = stores(cache, 2)
    kept = len(part_keys(store))
    assert kept == sum(exit_.texts[:2]) > 0  # the two batches stored before the exit
    assert not list((tmp_path / "outputs" / "results").rglob("_failures/*.json"))
    (rec,) = run(make_job(tmp_path, ["STSBenchmark"], cache_dir=cache, encode=encode, limit=40))
    entry = manifest_task(store)
    assert rec.status == "encoded" and entry["encoded"] == entry["texts"] - kept


def test_shard_assignment_is_stable_across_interpreters():
    """The shard of a text is a function of its cache key only: two interpreters with different
    PYTHONHASHSEED (str and bytes hashes differ between them) assign every text alike."""
    code = """
import json
from evalkit.encoders.layers.cache import model_identity, model_key, text_keys
from evalkit.encoders.layers.shard_job import shard_of
from tests.helpers import minilm_cfg
texts = [f"text {i}: " + "统一码 ünïcödé 🙂" * (i % 3) for i in range(400)]
key = model_key(model_identity(minilm_cfg()))
print(json.dumps({"key": key, "shards": [shard_of(k, 4) for k in text_keys(key, "document", None, texts)],
                  "hash": hash("a text")}))
"""
    runs = []
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert runs[0]["hash"] != runs[1]["hash"]  # the interpreters really hash differently
    assert runs[0]["key"] == runs[1]["key"] and runs[0]["shards"] == runs[1]["shards"]
    counts = [runs[0]["shards"].count(i) for i in range(4)]
    assert min(counts) > 60  # every shard gets its share (400 texts, 4 shards)


@pytest.mark.parametrize("override,message", [
    ("hydra.launcher.cpus_per_task=0", "hydra.launcher.cpus_per_task=0: Input should be greater than or equal to 1"),
    ("hydra.launcher.timeout_min=1", "signal_delay_s=120 must be shorter than the time limit (timeout_min=1: 60 s)"),
    ("hydra.launcher.poll_s=0", "hydra.launcher.poll_s=0.0: Input should be greater than 0"),
])
def test_launcher_settings_are_checked_before_anything_is_submitted(tmp_path, override, message):
    """Nonsense resources stop the sweep at once, naming the field (no cluster needed: nothing
    reaches sbatch)."""
    env = {**os.environ, "EVALKIT_OUTPUT_DIR": str(tmp_path), "PATH": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "evalkit", "-m", "hydra/launcher=slurm", override, "task=mteb",
                           "task.names=[STSBenchmark]"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, outputs(proc)
    assert "invalid SLURM launcher settings" in proc.stderr and message in proc.stderr, proc.stderr


class _Job:
    """What the watcher reads of a submitit Job: its id and its result and log paths."""

    def __init__(self, folder: Path, job_id: str):
        self.job_id = job_id
        self.paths = type("Paths", (), {"result_pickle": folder / f"{job_id}_result.pkl",
                                        "stderr": folder / f"{job_id}_log.err"})()


def test_the_queue_watcher_tells_requeued_from_dead_and_never_running_jobs(tmp_path):
    """The branches a healthy test cluster does not produce (EnforcePartLimits=ALL refuses what
    would pend forever; its controller always answers), on scripted squeue answers."""
    from evalkit.slurm.queue import Watched, problem, wait_for_jobs

    now = [0.0]
    # 1_0 is requeued (COMPLETING, then PENDING again) and finishes; 1_1 is cancelled; 1_2 can never start.
    script = {"1_0": ["RUNNING", "COMPLETING", "PENDING", "RUNNING", "RUNNING"],
              "1_1": ["RUNNING", "CANCELLED"], "1_2": ["PENDING|PartitionTimeLimit"]}

    def queue(ids):
        t = int(now[0])
        if t == 3:
            (tmp_path / "1_0_result.pkl").write_bytes(b"x")  # the requeued run wrote its result
        return {j: tuple((s[min(t, len(s) - 1)] + "|None").split("|")[:2]) for j, s in script.items() if j in ids}

    def sleep(seconds):
        now[0] += seconds

    cancelled = []
    jobs = [Watched(_Job(tmp_path, j), f"#{i}", rerun=f"rerun {j}") for i, j in enumerate(script)]
    wait_for_jobs(jobs, poll_s=1, grace_s=3, queue=queue, cancel=cancelled.append, clock=lambda: now[0], sleep=sleep)
    assert [w.outcome for w in jobs] == ["result", "dead", "never_runs"] and cancelled == ["1_2"]
    assert now[0] == 4  # the cancelled job was reported 3 s (the grace) after it ended
    assert "job 1_1 (#1): ended without a result: CANCELLED" in problem(jobs[1])
    assert "rerun it: rerun 1_1" in problem(jobs[1])
    assert "pending with reason PartitionTimeLimit" in problem(jobs[2])

    silent = [Watched(_Job(tmp_path, "2"), "#0")]
    wait_for_jobs(silent, poll_s=10, grace_s=3, unreachable_s=60, queue=lambda ids: None, clock=lambda: now[0],
                  sleep=sleep)
    assert silent[0].outcome == "unreachable" and "squeue did not answer for 60 s" in problem(silent[0])
