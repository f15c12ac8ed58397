"""The resources a SLURM sweep asks for (``hydra.launcher.*``, conf/hydra/launcher/slurm.yaml):
checked for sense before anything is submitted, then against the cluster itself.

* :func:`validate` — ranges and consistency of the launcher's fields, one clear error naming the
  field (``hydra.launcher.cpus_per_task=0: …``).
* :func:`preflight` — ``sbatch --test-only`` with the very script submitit will submit: the
  scheduler says whether any node of the partition can ever run it. A request larger than every
  node is refused here even on clusters that would accept it and let it pend forever (no
  ``EnforcePartLimits``). Time limits beyond the partition's are refused by ``sbatch`` itself
  where the partition enforces its limits, and otherwise caught by the queue watcher (pending
  reason ``PartitionTimeLimit``, ``evalkit.slurm.queue``).
* :func:`submission_error` — an ``sbatch`` that refused the array, with what was asked and what
  the partition's nodes have.
"""

from __future__ import annotations

import subprocess
import tempfile
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.errors import ConfigError

SBATCH_TIMEOUT_S = 60
ASKED = ("partition", "nodes", "tasks_per_node", "cpus_per_task", "mem_gb", "gpus_per_node", "gres", "timeout_min",
         "qos", "account", "constraint")


class LauncherSettings(BaseModel):
    """The fields evalkit checks; the others go to submitit / sbatch unchanged."""

    model_config = ConfigDict(extra="allow")
    timeout_min: int = Field(ge=1)
    nodes: int = Field(1, ge=1)
    tasks_per_node: int = Field(1, ge=1)
    cpus_per_task: int | None = Field(None, ge=1)
    gpus_per_node: int | None = Field(None, ge=0)
    mem_gb: float | None = Field(None, gt=0)
    array_parallelism: int = Field(256, ge=1)
    max_num_timeout: int = Field(0, ge=0)
    signal_delay_s: int = Field(120, ge=0)
    poll_s: float = Field(30.0, gt=0)
    result_grace_s: float = Field(60.0, ge=0)
    check_resources: bool = True

    @model_validator(mode="after")
    def _signal_before_limit(self):
        if self.signal_delay_s >= self.timeout_min * 60:
            raise ValueError(f"signal_delay_s={self.signal_delay_s} must be shorter than the time limit "
                             f"(timeout_min={self.timeout_min}: {self.timeout_min * 60} s): it is how long before the "
                             "limit a job is told to checkpoint and requeue")
        return self


def validate(params: dict[str, Any]) -> LauncherSettings:
    try:
        return LauncherSettings(**params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            where = f"hydra.launcher.{field}={params.get(field)!r}: " if field else "hydra.launcher: "
            problems.append(where + err["msg"].removeprefix("Value error, "))
        raise ConfigError("invalid SLURM launcher settings (conf/hydra/launcher/slurm.yaml):\n  "
                          + "\n  ".join(problems)) from None


def asked(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in ASKED if params.get(k) is not None)


def partition_nodes(partition: str | None) -> str:
    """The partition's nodes as the scheduler sees them (CPUs, memory, GRES, time limit), one a line."""
    cmd = ["sinfo", "--noheader", "--Node", "--format=%N|%P|%c|%m|%G|%l"]
    if partition:
        cmd.append(f"--partition={partition}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SBATCH_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return "  (sinfo did not answer)"
    rows = []
    for line in sorted(set(proc.stdout.splitlines())):
        parts = line.split("|")
        if len(parts) == 6:
            node, part, cpus, mem, gres, limit = parts
            gpus = "no GRES" if gres in ("(null)", "") else f"GRES {gres}"
            rows.append(f"  node {node} (partition {part}): {cpus} CPUs, {mem} MB memory, {gpus}, time limit {limit}")
    return "\n".join(rows) or f"  (sinfo lists no node{f' in partition {partition}' if partition else ''})"


def preflight(script: str, params: dict[str, Any]) -> None:
    """``sbatch --test-only`` of the job script; a ConfigError when no node can ever run it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="evalkit-preflight-") as f:
        f.write(script)
        f.flush()
        try:
            proc = subprocess.run(["sbatch", "--test-only", f.name], capture_output=True, text=True,
                                  timeout=SBATCH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"sbatch --test-only could not check the SLURM resources: {exc}") from None
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip()
        raise ConfigError(
            f"no node of the cluster can run these jobs; sbatch --test-only says: {said}\n"
            f"asked for: {asked(params)}\nwhat there is:\n{partition_nodes(params.get('partition'))}\n"
            "change hydra.launcher.<field> (conf/hydra/launcher/slurm.yaml lists them); nothing was submitted")


def submission_error(exc: BaseException, params: dict[str, Any]) -> ConfigError:
    said = str(exc).strip().splitlines()
    return ConfigError(
        "sbatch refused the jobs: " + " / ".join(line for line in said if line) + "\n"
        f"asked for: {asked(params)}\nwhat there is:\n{partition_nodes(params.get('partition'))}\n"
        "change hydra.launcher.<field> (conf/hydra/launcher/slurm.yaml lists them); nothing was submitted")
