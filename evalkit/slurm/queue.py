"""Waiting for a sweep's SLURM jobs through the scheduler's own queue, never through accounting.

submitit learns that a job ended only from ``sacct``; on a cluster without an accounting daemon
``sacct`` fails, and a job that died without writing its result (cancelled, killed, its node
lost) is waited for forever. Here every job is watched through ``squeue`` (``slurmctld``'s own
view, no accounting needed) and the job's result file:

* the result file exists: the job is finished (its outcome, success or error, is in it);
* the job ended (a terminal state in ``squeue --states=all``) or left the queue altogether, and no
  result file appeared within ``grace_s`` (a network file system may show it late; a requeued
  job is back in the queue by then): the job is **dead**;
* the job is pending for a reason that never goes away by itself (the partition cannot run it,
  an unknown QOS or account): it is cancelled and reported instead of pending forever;
* the scheduler cannot be reached for ``unreachable_s``: every unfinished job is reported.

A requeued job (preempted, or timed out and checkpointed by submitit) keeps its id and goes back
to PENDING: it is still alive.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("evalkit.slurm")

# Job states after which no result will come (``squeue --states=all`` shows them until the
# scheduler forgets the job, MinJobAge later).
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
         "PREEMPTED", "REVOKED", "TIMEOUT"}
# Pending reasons that do not clear by themselves: the job would pend until someone changes the
# cluster's configuration (sbatch accepts such jobs unless EnforcePartLimits=ALL).
NEVER_RUNS = {"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints", "InvalidQOS",
              "InvalidAccount", "QOSMaxWallDurationPerJobLimit", "QOSMaxCpuPerJobLimit", "QOSMaxMemoryPerJob",
              "QOSMaxGRESPerJob", "AssocMaxWallDurationPerJobLimit"}
UNREACHABLE_S = 1800.0  # how long a scheduler that does not answer is waited for
STATUS_EVERY_S = 60.0  # a summary line of the jobs' states this often
SQUEUE_TIMEOUT_S = 60  # a munged that is down makes the clients block for minutes


@dataclass
class Watched:
    """One submitted job: a submitit Job (``job_id``, ``paths``), what it runs, how to rerun it."""

    job: Any
    label: str
    rerun: str = ""
    state: str = "SUBMITTED"
    reason: str = ""
    ended_at: float | None = None  # first seen ended (or gone) without a result
    outcome: str | None = None  # "result" | "dead" | "never_runs" | "unreachable"

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def has_result(self) -> bool:
        return Path(self.job.paths.result_pickle).exists()


def query_queue(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """{job id: (state, reason)} of the jobs the scheduler still knows; None if it does not answer."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    cmd = ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(arrays)}", "--format=%i|%T|%r"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("squeue did not answer: %s", exc)
        return None
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # every job already forgotten by the scheduler
            return {}
        log.warning("squeue failed (%d): %s", proc.returncode, proc.stderr.strip())
        return None
    out = {}
    for line in proc.stdout.splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        out[job_id] = (state.split()[0] if state else "UNKNOWN", reason)
    return out


def wait_for_jobs(jobs: list[Watched], *, poll_s: float, grace_s: float, unreachable_s: float = UNREACHABLE_S,
                  queue: Callable[[list[str]], dict | None] = query_queue, cancel: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Until every job has an ``outcome``: see the module docstring."""
    cancel = cancel or cancel_job
    last_answer = last_status = clock()
    while True:
        for w in jobs:
            if w.outcome is None and w.has_result():
                w.outcome = "result"
                log.info("job %s (%s): finished", w.job_id, w.label)
        waiting = [w for w in jobs if w.outcome is None]
        if not waiting:
            return
        now = clock()
        states = queue([w.job_id for w in waiting])
        if states is not None:
            last_answer = now
            for w in waiting:
                _update(w, states.get(w.job_id), now, grace_s, cancel)
        elif now - last_answer > unreachable_s:
            for w in waiting:
                w.outcome, w.reason = "unreachable", f"squeue did not answer for {unreachable_s:.0f} s"
            return
        if now - last_status >= STATUS_EVERY_S:
            last_status = now
            log.info("SLURM jobs: %s", summary(jobs))
        if any(w.outcome is None for w in jobs):
            sleep(poll_s)


def _update(w: Watched, seen: tuple[str, str] | None, now: float, grace_s: float, cancel) -> None:
    state, reason = seen or ("GONE", "no longer in the scheduler's queue")
    if (state, reason) != (w.state, w.reason):
        log.info("job %s (%s): %s%s", w.job_id, w.label, state, f" ({reason})" if reason not in ("", "None") else "")
        w.state, w.reason = state, reason
    if state == "PENDING" and reason in NEVER_RUNS:
        cancel(w.job_id)
        w.outcome = "never_runs"
    elif state in ENDED or state == "GONE":
        w.ended_at = w.ended_at if w.ended_at is not None else now
        if now - w.ended_at >= grace_s and not w.has_result():
            w.outcome = "dead"
    else:
        w.ended_at = None


def cancel_job(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=SQUEUE_TIMEOUT_S)


def summary(jobs: list[Watched]) -> str:
    counts: dict[str, int] = {}
    for w in jobs:
        key = "finished" if w.outcome == "result" else w.state.lower()
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def log_tail(job: Any, lines: int = 8) -> str:
    """The last lines of a job's error log (where slurmstepd says why it was stopped)."""
    path = Path(job.paths.stderr)
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"    (no log at {path})"
    return "\n".join(f"    {line}" for line in text) or f"    ({path} is empty)"


def problem(w: Watched) -> str:
    """What happened to a job that left no result, and how to rerun it."""
    if w.outcome == "never_runs":
        what = (f"would never start: pending with reason {w.reason} (the partition, QOS or account cannot run it); "
                "cancelled. Ask for resources the partition allows (sinfo, scontrol show partition)")
    elif w.outcome == "unreachable":
        what = f"unknown: the scheduler did not answer ({w.reason}; last state {w.state})"
    else:
        what = (f"ended without a result: {w.state}"
                + (f" ({w.reason})" if w.reason not in ("", "None") else "")
                + " in the scheduler's queue")
    lines = [f"job {w.job_id} ({w.label}): {what}", f"  its log: {w.job.paths.stderr}", log_tail(w.job)]
    if w.rerun:
        lines.append(f"  rerun it: {w.rerun}")
    return "\n".join(lines)
