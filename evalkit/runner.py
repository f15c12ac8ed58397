"""The job loop: one model variant, its tasks, result files. No Hydra in here.

``run(job, callbacks)`` takes a validated :class:`evalkit.schema.Job`, so tests and other
programs call it directly; ``evalkit.__main__`` only turns a Hydra config into a Job::

    job = Job(model=..., task=TaskConfig(names=["zh_longdoc"]), paths=PathsConfig(root="out"))
    records = run(job)          # [TaskRecord(status="ok", result=ResultFile(...)), ...]

Down the layers: the task index loads every task (before any model), the result store says
which (variant, task) pairs are already complete, ``build_stack`` gives the encoder (the
model itself loads only when a vector is missing from the cache), each task evaluates
through the one task protocol, and the store files the typed record.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
import traceback
from pathlib import Path

from evalkit.callbacks.base import Callback, CallbackList, JobInfo, TaskRecord
from evalkit.errors import EvalkitError, ModelLoadError
from evalkit.results import EvalkitBlock, FailureRecord, ModelBlock, ResultFile, ResultStore, TaskBlock, redact
from evalkit.schema import Job
from evalkit.fields import scoring_dump
from evalkit.tasks.base import EvalContext, Task
from evalkit.variants import Variant, variant_of

log = logging.getLogger("evalkit")


def run(job: Job, callbacks: list[Callback] | None = None, *, variant: Variant | None = None) -> list[TaskRecord]:
    from evalkit.encoders.stack import build_stack
    from evalkit.tasks.index import TaskIndex

    hooks = CallbackList(callbacks)
    job = resolved(job)
    variant = variant or variant_of(job)
    store = ResultStore(job.paths.results)
    store.check_writable()
    run_ = _Run(job, variant, store, hooks)
    try:
        tasks = TaskIndex(job.task.spec).load_all(job.task, job.paths)
    except Exception as exc:  # a job that fails as a whole still leaves a reason per task
        run_.fail([TaskBlock(name=n) for n in job.task.names], exc, "prepare")
        raise
    info = JobInfo(model_name=variant.label, config_hash=run_.config_hash, task_names=[t.name for t in tasks],
                   results_dir=str(store.root))
    hooks.on_job_start(info)
    records: list[TaskRecord] = []
    todo: list[Task] = []
    for task in tasks:
        done = None if job.overwrite else store.find_complete(
            variant.id, job.model.revision, task.name, config_hash=run_.config_hash, fingerprint=task.fingerprint,
            expected=task.expected_subsets())
        if done is not None:
            records.append(TaskRecord(variant.label, task.name, "skipped", result=done,
                                      path=str(store.path(variant.id, job.model.revision, task.name))))
        else:
            todo.append(task)
    if todo:
        def loaded(backend, seconds: float) -> None:
            info.model_meta, info.model_load_seconds = backend.meta, seconds
            hooks.on_model_loaded(info)

        try:
            stack = build_stack(job.model, job.encode, cache_dir=job.paths.cache, hooks=hooks, on_load=loaded)
        except Exception as exc:
            run_.fail([t.info() for t in todo], exc, "model_load")
            raise _load_error(job, exc) from exc
        try:
            # Scale-out over machines (evalkit.parallel.shards): encode.shard=i/N only encodes and stores its
            # shard of every task; otherwise complete shard stores of these tasks are merged into the cache first.
            from evalkit.parallel.scoring import prepare_scoring
            from evalkit.parallel.shards import run_shard_job

            if job.encode.shard is not None:
                records += run_shard_job(run_, info, stack, todo)
                todo = []
            else:
                run_.shards = prepare_scoring(job, todo, stack)
            for task in todo:
                records.append(run_.task(info, stack, task))
        except BaseException as exc:  # the model or server went away, or Ctrl-C: the rest fail
            finished = {r.task_name for r in records}
            stage = "model_load" if isinstance(exc, ModelLoadError) else "task"
            if isinstance(exc, KeyboardInterrupt):
                kept = [r for r in records if r.status in ("ok", "skipped")]
                log.warning("interrupted: %d finished result(s) kept%s; the embedding cache is committed. Rerun the "
                            "same command to finish the rest.", len(kept),
                            f" ({', '.join(r.task_name for r in kept)})" if kept else "")
            else:
                run_.fail([t.info() for t in todo if t.name not in finished], exc, stage)
            raise
        finally:
            stack.close()
    records.sort(key=lambda r: info.task_names.index(r.task_name))
    hooks.on_job_end(info, records)
    return records


def resolved(job: Job) -> Job:
    """``dtype: auto`` -> what will run (results, cache key and hash record that)."""
    if getattr(job.model, "dtype", None) == "auto":
        from evalkit.encoders.torch_utils import resolve_model_config

        return job.model_copy(update={"model": resolve_model_config(job.model)})
    return job


def _load_error(job: Job, exc: BaseException) -> EvalkitError:
    if isinstance(exc, EvalkitError):
        return exc
    return ModelLoadError(f"model {job.model.name!r} could not be loaded: {type(exc).__name__}: {exc}")


class _Run:
    """What one run's tasks share: the job, its variant and hash, the store, the hooks."""

    def __init__(self, job: Job, variant: Variant, store: ResultStore, hooks: CallbackList):
        self.job, self.variant, self.store, self.hooks = job, variant, store, hooks
        self.config_hash = job.config_hash()
        self.shards = None  # evalkit.parallel.scoring.ScoringShards when the vectors come from shard jobs

    def model_block(self, meta: dict | None = None) -> ModelBlock:
        return ModelBlock(name=self.variant.name, variant=self.variant.label, variant_id=self.variant.id,
                          revision=self.job.model.revision, config=redact(self.job.model.model_dump(mode="json")),
                          meta=meta or {})

    def fail(self, tasks: list[TaskBlock], exc: BaseException, stage: str) -> list[Path | None]:
        """Persist why these tasks have no result, for the leaderboard and the user."""
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc, limit=8))
        return [self.store.save_failure(FailureRecord(
            stage=stage, error=error, traceback=tb, model=self.model_block(), task=t, config_hash=self.config_hash,
            versions=versions(), date=now())) for t in tasks]

    def task(self, info: JobInfo, stack, task: Task) -> TaskRecord:
        self.hooks.on_task_start(info, task)
        before = stack.stats.snapshot()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="evalkit-task-") as work:
            ctx = EvalContext(hooks=self.hooks, work_dir=Path(work), model_load_seconds=info.model_load_seconds,
                              backend=stack.backend, stats=stack.stats)
            try:
                out = task.evaluate(stack.encoder, ctx)
            except (EvalkitError, KeyboardInterrupt):
                raise
            except Exception as exc:  # one task failing must not lose the others
                log.error("%s on %s failed: %s", self.variant.label, task.name, exc)
                (path,) = self.fail([task.info()], exc, "task")
                record = TaskRecord(self.variant.label, task.name, "failed", error=f"{type(exc).__name__}: {exc}",
                                    path=str(path) if path else None)
                self.hooks.on_task_end(info, task, record)
                return record
        encode = stack.stats.since(before) | {"cache": self.job.encode.cache, "long_docs": self.job.encode.long_docs}
        if stack.cache is not None:
            encode["cache_path"] = str(stack.cache.path)
        figures = self.hooks.task_figures(info, task)
        meta = stack.backend.meta
        computed = getattr(stack.backend.loaded, "computed", None)  # workers, devices (evalkit.parallel)
        if self.shards is not None:  # and the shard jobs the vectors came from
            computed = {**(computed or {}), "shards": self.shards.for_task(task.name)}
        block = EvalkitBlock(
            model=self.model_block(meta.to_dict()), task=task.info(), main_score=out.main_score,
            config_hash=self.config_hash, encode_config=scoring_dump(self.job.encode, drop_defaults=True),
            versions=versions(), device=meta.device, date=now(),
            wall_seconds={"model_load": info.model_load_seconds, "task": time.perf_counter() - t0},
            profile=figures.get("profile"), encode=encode, computed=computed,
            extra=out.extra,
        )
        result = ResultFile(task_result=out.task_result, evalkit=block)
        path = self.store.save(result, out.items)
        record = TaskRecord(self.variant.label, task.name, "ok", result=result, path=str(path))
        self.hooks.on_task_end(info, task, record)
        return record


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    import evalkit

    out: dict[str, str | None] = {"evalkit": evalkit.__version__, "python": platform.python_version()}
    for pkg in ("mteb", "torch", "transformers", "sentence-transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
