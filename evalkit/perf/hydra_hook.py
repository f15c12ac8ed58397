"""Hydra callback (set by ``conf/task/perf.yaml``): the merged perf table and plot of a run or sweep.

After each job, the job's perf result is copied into the job's output folder (so a sweep
folder holds exactly its own models, also when a job resumed a saved result); at the end
of the run or sweep, ``perf_report.{json,md,png}`` are written to the run / sweep folder.
Works with any launcher that shares the file system (basic, submitit).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("evalkit.perf")


class PerfReport(Callback):
    def __init__(self) -> None:
        self._job_started = 0.0
        self._run_dir: Path | None = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_started = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        try:
            self._copy_job_result(config)
        except Exception as exc:  # a report hook must never fail the job
            log.warning("perf report: could not collect this job's perf result: %s", exc)

    def _copy_job_result(self, config: DictConfig) -> None:
        from evalkit.config import job_from_config
        from evalkit.results import result_path

        out_dir = Path(config.hydra.runtime.output_dir)
        self._run_dir = out_dir
        job = job_from_config(_without_hydra(config))
        path = result_path(job.results_dir, job.model.name, getattr(job.model, "revision", None), "perf")
        if not path.exists():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        fresh = path.stat().st_mtime >= self._job_started - 1
        same_config = (data.get("evalkit") or {}).get("config_hash") == job.config_hash()
        if fresh or same_config:  # written now, or the saved result this job resumed from
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out_dir / "perf.json")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._run_dir is not None:
            _report(self._run_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _report(Path(config.hydra.sweep.dir))


def _without_hydra(config: DictConfig) -> DictConfig:
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    with open_dict(cfg):
        cfg.pop("hydra", None)
    # paths.* may interpolate hydra:… — resolve them against the original config
    cfg.paths = OmegaConf.create(OmegaConf.to_container(config.paths, resolve=True))
    return cfg


def _report(folder: Path) -> None:
    from evalkit.perf.report import load_perf_results, markdown_tables, write_report

    try:
        results = load_perf_results([folder])
        if not results:
            return
        paths = write_report(results, folder)
        print("\n" + markdown_tables(results))
        print(f"perf report: {paths['md']}  plot: {paths['png']}")
    except Exception as exc:
        log.warning("perf report for %s failed: %s", folder, exc)
