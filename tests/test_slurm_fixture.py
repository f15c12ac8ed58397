"""The SLURM test cluster's clean-up (tests/fixtures/slurm_cluster.py): no daemon, no job and no
folder outlives a test run, whether a test failed (the teardown) or the run itself was killed
(the next start cleans up). Each test starts a cluster of its own (a few seconds; skipped with
the reason where the cluster cannot run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.slurm_cluster import PREFIX, clean_stale_clusters, missing_reason, processes_of, traversable_base
from tests.helpers import REPO


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_cluster_teardown_stops_every_daemon_when_a_test_fails(tmp_path):
    """The fixture's teardown, in a pytest run of its own whose only test fails with a job running."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    seen = tmp_path / "cluster.json"
    (tmp_path / "test_inner.py").write_text(f"""
import json, time
from tests.fixtures.slurm_cluster import slurm_cluster  # noqa: F401

def test_fails_with_a_job_running(slurm_cluster):
    job = slurm_cluster.run("sbatch", "--parsable", "--mem=100M", "--wrap=srun sleep 600").stdout.strip()
    while slurm_cluster.job(job)["JobState"] != "RUNNING":
        time.sleep(0.2)
    pids = {{name: p.pid for name, p in slurm_cluster.procs.items()}}
    open({str(seen)!r}, "w").write(json.dumps({{"conf": str(slurm_cluster.conf), "root": str(slurm_cluster.root),
                                                "pids": pids}}))
    assert False, "fails on purpose"
""")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 1 and "fails on purpose" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    cluster = json.loads(seen.read_text())
    for name, pid in cluster["pids"].items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still runs"
    assert processes_of(Path(cluster["conf"])) == []  # no slurmstepd, no job left
    assert not Path(cluster["root"]).exists()


def test_a_killed_test_run_leaves_its_daemons_to_the_next_start(tmp_path):
    """A test run killed outright (SIGKILL, a CI timeout) runs no teardown, and the daemons live in
    sessions of their own: the next cluster start stops them, their job too, and deletes the folder."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    code = """
import json, sys, time
from tests.fixtures.slurm_cluster import start_cluster
cluster = start_cluster()
job = cluster.run("sbatch", "--parsable", "--mem=100M", "--wrap=srun sleep 600").stdout.strip()
while cluster.job(job)["JobState"] != "RUNNING":
    time.sleep(0.2)
print(json.dumps({"conf": str(cluster.conf), "root": str(cluster.root),
                  "pids": {name: p.pid for name, p in cluster.procs.items()}}), flush=True)
time.sleep(600)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-3000:] if proc.poll() is not None else "no cluster within the read"
        cluster = json.loads(line)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    conf, root = Path(cluster["conf"]), Path(cluster["root"])
    assert all(running(pid) for pid in cluster["pids"].values())  # orphans now, still serving
    owner = lambda p: (p / "owner.pid").read_text() if (p / "owner.pid").exists() else None  # noqa: E731
    mine = [p for p in traversable_base().glob(f"{PREFIX}*") if owner(p) == str(os.getpid())]
    assert root in clean_stale_clusters()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in cluster["pids"].values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [name for name, pid in cluster["pids"].items() if running(pid)] == []
    assert processes_of(conf) == [] and not root.exists()  # no slurmstepd, no job, no folder
    assert all(p.exists() for p in mine)  # this run's own cluster (a live owner) is left alone
