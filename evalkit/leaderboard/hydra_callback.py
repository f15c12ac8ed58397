"""Hydra callback: a leaderboard (and the perf report, when perf ran) at the end of every
multirun, the perf report at the end of a single run (wired in ``conf/config.yaml``).

* ``on_job_start`` (in the job's process, whatever the launcher) writes
  ``<job dir>/evalkit_job.json``: the model, revision, tasks, config hash and results folder
  of the job, status "started". ``on_job_end`` marks it "completed" or "failed". A job
  killed in between keeps "started", so its pairs show as missing, not absent.
* ``on_multirun_end`` (in the launching process) builds the leaderboard of the pairs the
  sweep's manifests name and writes ``<sweep dir>/leaderboard.{json,md,html,png}``.

Nothing here may break a sweep: every error is logged and swallowed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from evalkit.hydra_job import is_multirun
from evalkit.leaderboard.scan import MANIFEST_NAME

log = logging.getLogger("evalkit.leaderboard")


class LeaderboardCallback(Callback):
    def __init__(self, enabled: bool = True, filename: str = "leaderboard.json",
                 formats: list[str] | tuple[str, ...] = ("json", "md", "html", "png"), mteb_dir: str | None = None,
                 print_table: bool = True, baseline: str | None = None, seed_report: bool = False,
                 deploy_report: bool = False):
        self.enabled = enabled
        self.baseline = baseline
        self.seed_report = seed_report  # +experiment=seed_compare: the article's table beside the board
        self.deploy_report = deploy_report  # +experiment=deploy_compare: deploy_report.{md,html,png}
        self.filename = filename
        self.formats = tuple(formats)
        self.mteb_dir = mteb_dir
        self.print_table = print_table
        self._started_at: dict[str, float] = {}  # job dir -> start time (unix seconds)

    # -- in every job's process -------------------------------------------------------------
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.enabled and is_multirun():
            self._safely(self._write_manifest, config, "started")

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if self.enabled and is_multirun():
            status = getattr(getattr(job_return, "status", None), "name", "COMPLETED").lower()
            self._safely(self._write_manifest, config, status)
            if status == "completed" and OmegaConf.select(config, "leaderboard.baseline_bm25", default=False):
                self._safely(self._bm25_baseline, config)

    def _bm25_baseline(self, config: DictConfig) -> None:
        """leaderboard.baseline_bm25: BM25 on this job's retrieval tasks, a row of the sweep's board."""
        from hydra.core.hydra_config import HydraConfig

        from evalkit.hydra_job import job_from_config
        from evalkit.leaderboard.baseline import run_baseline
        from evalkit.runner import resolved

        written = run_baseline(resolved(job_from_config(config)), Path(HydraConfig.get().runtime.output_dir))
        if written is not None:
            log.info("BM25 baseline: %s", written)

    # -- in the launching process -----------------------------------------------------------
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.enabled:
            self._safely(self._build, Path(str(config.hydra.sweep.dir)))

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.enabled:
            self._safely(self._reports, Path(str(config.hydra.run.dir)), config)
            if self.seed_report:
                self._safely(self._single_seed, Path(str(config.hydra.run.dir)), config)

    def _single_seed(self, run_dir: Path, config: DictConfig) -> None:
        """A single run of +experiment=seed_compare: the table for its one model."""
        from evalkit.hydra_job import hydra_variant, job_from_config
        from evalkit.leaderboard import build_leaderboard
        from evalkit.results import ResultStore
        from evalkit.runner import resolved

        job = resolved(job_from_config(config))
        folder = ResultStore(job.paths.results).folder(hydra_variant(job).id, job.model.revision)
        self._seed(build_leaderboard([folder]), [folder], run_dir)

    def _seed(self, lb, sources: list[Path], folder: Path) -> None:
        from evalkit.reports.perf import load_perf_results
        from evalkit.reports.seed import to_markdown, write_seed_report

        perf = {f["model"]: f for f in load_perf_results(sources)}
        paths = write_seed_report(lb, perf, folder)
        print("\n" + to_markdown(lb, perf))
        log.info("seed report: %s", ", ".join(str(p) for p in paths.values()))

    def _deploy(self, lb, sweep_dir: Path) -> None:
        """The board again with the full-precision variant as the baseline of the paired tests."""
        from evalkit.leaderboard import build_leaderboard
        from evalkit.reports.deploy import baseline_of, to_markdown, deploy_rows, write_deploy_report
        from evalkit.reports.perf import load_perf_results

        lb = build_leaderboard([sweep_dir], baseline=baseline_of(lb))
        perf = {f["model"]: f for f in load_perf_results([sweep_dir])}
        paths = write_deploy_report(lb, perf, sweep_dir)
        print("\n" + to_markdown(deploy_rows(lb, perf, baseline_of(lb)), [t.name for t in lb.tasks if t.name != "perf"],
                                  baseline_of(lb)))
        log.info("deploy report: %s", ", ".join(str(p) for p in paths.values()))

    def _reports(self, folder: Path, config: DictConfig | None = None) -> None:
        """perf_report.{json,md,png} in the run or sweep folder, over the perf results it produced."""
        from evalkit.reports.perf import load_perf_results, write_report
        from evalkit.tasks.perf.table import markdown_tables

        sources = [folder]
        if config is not None:  # a single run: its own perf result, wherever its results folder is
            from evalkit.hydra_job import hydra_variant, job_from_config
            from evalkit.results import ResultStore
            from evalkit.runner import resolved

            job = resolved(job_from_config(config))
            path = ResultStore(job.paths.results).path(hydra_variant(job).id, job.model.revision, "perf")
            if "perf" not in job.task.names or not path.exists():
                return
            sources = [path]
        results = load_perf_results(sources)
        if results:
            paths = write_report(results, folder)
            print("\n" + markdown_tables(results))
            log.info("perf report: %s  plot: %s", paths["md"], paths["png"])

    def _build(self, sweep_dir: Path) -> None:
        from evalkit.leaderboard import build_leaderboard, write_outputs
        from evalkit.leaderboard.markdown import console_summary

        if not any(sweep_dir.rglob(MANIFEST_NAME)):
            log.warning("no job manifests under %s: no leaderboard", sweep_dir)
            return
        self._reports(sweep_dir)
        lb = build_leaderboard([sweep_dir], baseline=self.baseline)
        written = write_outputs(lb, sweep_dir / self.filename, formats=self.formats,
                                mteb_dir=Path(self.mteb_dir) if self.mteb_dir else None)
        if self.print_table:
            print("\n" + console_summary(lb))
        if self.seed_report:
            self._seed(lb, [sweep_dir], sweep_dir)
        if self.deploy_report:
            self._safely(self._deploy, lb, sweep_dir)
        for w in lb.warnings:
            log.warning("leaderboard: %s", w)
        log.info("leaderboard: %s", ", ".join(str(p) for p in written.values()))

    def _write_manifest(self, config: DictConfig, status: str) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import to_absolute_path

        from evalkit.results import atomic_write_json, redact

        hc = HydraConfig.get()
        out_dir = Path(hc.runtime.output_dir)
        now = time.time()
        manifest: dict[str, Any] = {
            "evalkit_job": 1,
            "status": status,
            "overrides": list(hc.overrides.task),
            "log": str(out_dir / f"{hc.job.name}.log"),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": now if status == "started" else self._started_at.get(str(out_dir), None),
            "ended_at": None if status == "started" else now,
        }
        if status == "started":
            self._started_at[str(out_dir)] = now
        job_cfg = OmegaConf.masked_copy(config, [k for k in config.keys() if k != "hydra"])
        try:
            from evalkit.hydra_job import hydra_variant, job_from_config
            from evalkit.runner import resolved
            from evalkit.tasks.index import TaskIndex

            job = resolved(job_from_config(config))
            variant = hydra_variant(job)
            manifest.update(
                model=variant.label,
                model_name=job.model.name,
                variant_id=variant.id,
                revision=job.model.revision,
                tasks=TaskIndex(job.task.spec).resolve_names(job.task),
                config_hash=job.config_hash(),
                results_dir=str(Path(to_absolute_path(str(job.paths.results))).resolve()),
                model_config=redact(job.model.model_dump(mode="json")),
            )
        except Exception as exc:  # an invalid config: the job itself reports it; keep what is known
            model = OmegaConf.select(job_cfg, "model.name", default=None)  # best effort: the config is invalid
            manifest.update(model=model, variant_id=model, tasks=list(OmegaConf.select(job_cfg, "task.names", default=[]) or []),
                            error=f"{type(exc).__name__}: {exc}")
            if model:
                results_dir = OmegaConf.select(job_cfg, "paths.results_dir", default=None)
                manifest["results_dir"] = str(Path(to_absolute_path(str(results_dir))).resolve()) if results_dir else None
        atomic_write_json(out_dir / MANIFEST_NAME, manifest)

    @staticmethod
    def _safely(fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a leaderboard problem must never fail or stop a sweep
            log.warning("leaderboard callback: %s: %s", type(exc).__name__, exc)
