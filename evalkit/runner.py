"""The job loop: one model variant, its tasks, result files. No Hydra in here.

``run(job, callbacks)`` takes a validated :class:`evalkit.schema.Job`, so tests and other
programs call it directly; ``evalkit.__main__`` only turns a Hydra config into a Job::

    job = Job(model=..., task=TaskConfig(names=["zh_longdoc"]), paths=PathsConfig(root="out"))
    records = run(job)          # [TaskRecord(status="ok", result=ResultFile(...)), ...]

Down the layers: the task index loads every task (before any model), the result store says
which (variant, task) pairs are already complete, the encoder stack is built
(``evalkit.encoders.stack``; the model itself loads only when a vector is missing from the
cache) and told which tasks come, each task evaluates through the one task protocol, and its
output is filed through the stack's sink — the result store, unless the stack files
elsewhere (an encode-only shard job: its shard's manifest). ``stack=`` replaces the builder
(a test's fake encoder, another program's stack).
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from evalkit.callbacks.base import Callback, CallbackList, JobInfo, TaskRecord
from evalkit.encoders.stack import EncoderStack, build_stack
from evalkit.errors import EvalkitError, ModelLoadError, ProbeError
from evalkit.results import EvalkitBlock, FailureRecord, ModelBlock, ResultFile, ResultStore, TaskBlock, redact
from evalkit.schema import Job
from evalkit.tasks.base import EvalContext, Task, TaskOutput
from evalkit.variants import Variant, variant_of

log = logging.getLogger("evalkit")

# (job, hooks, on_load(model, seconds)) -> the stack the job's tasks encode with
StackFactory = Callable[[Job, CallbackList, Callable], EncoderStack]


def default_stack(job: Job, hooks: CallbackList, on_load: Callable) -> EncoderStack:
    return build_stack(job.model, job.encode, cache_dir=job.paths.cache, hooks=hooks, on_load=on_load)


def run(job: Job, callbacks: list[Callback] | None = None, *, variant: Variant | None = None,
        stack: StackFactory | None = None) -> list[TaskRecord]:
    from evalkit.tasks.index import TaskIndex

    job = resolved(job)
    run_ = _Run(job, variant or variant_of(job), CallbackList(callbacks))
    try:
        tasks = TaskIndex(job.task.spec).load_all(job.task, job.paths)
    except Exception as exc:  # a job that fails as a whole still leaves a reason per task
        run_.fail([TaskBlock(name=n) for n in job.task.names], exc, "prepare")
        raise
    info = JobInfo(model_name=run_.variant.label, config_hash=run_.config_hash, task_names=[t.name for t in tasks],
                   results_dir=str(run_.store.root))
    run_.hooks.on_job_start(info)
    records, todo = run_.complete(tasks)
    if todo:
        records += run_.tasks(info, todo, stack or default_stack)
    records.sort(key=lambda r: info.task_names.index(r.task_name))
    run_.hooks.on_job_end(info, records)
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

    def __init__(self, job: Job, variant: Variant, hooks: CallbackList):
        self.job, self.variant, self.hooks = job, variant, hooks
        self.store = ResultStore(job.paths.results)
        self.store.check_writable()
        self.config_hash = job.config_hash()

    def complete(self, tasks: list[Task]) -> tuple[list[TaskRecord], list[Task]]:
        """(records of the tasks with a complete result already, the tasks still to run)."""
        records, todo = [], []
        for task in tasks:
            done = None if self.job.overwrite else self.store.find_complete(
                self.variant.id, self.job.model.revision, task.name, config_hash=self.config_hash,
                fingerprint=task.fingerprint, expected=task.expected_subsets())
            if done is None:
                todo.append(task)
                continue
            path = self.store.path(self.variant.id, self.job.model.revision, task.name)
            records.append(TaskRecord(self.variant.label, task.name, "skipped", result=done, path=str(path)))
        return records, todo

    def tasks(self, info: JobInfo, todo: list[Task], make_stack: StackFactory) -> list[TaskRecord]:
        """Build the stack, then evaluate and file each task; a stop keeps what is finished."""
        def loaded(backend, seconds: float) -> None:
            info.model_meta, info.model_load_seconds = backend.meta, seconds
            self.hooks.on_model_loaded(info)

        try:
            stack = make_stack(self.job, self.hooks, loaded)
            if self.job.rerank is not None:  # the second stage, whatever made the first: loads on first use
                from evalkit.rerank import Reranker

                stack.rerank = Reranker(self.job.rerank, self.hooks)
        except Exception as exc:
            self.fail([t.info() for t in todo], exc, _stage(exc, "model_load"))
            raise _load_error(self.job, exc) from exc
        records: list[TaskRecord] = []
        try:
            stack.start([self.job.texts_of(t) for t in todo])
            for task in todo:
                records.append(self.task(info, stack, task))
        except BaseException as exc:  # the model or server went away, or Ctrl-C: the rest fail
            self.stopped(exc, todo, records)
            raise
        finally:
            stack.close()
        return records

    def stopped(self, exc: BaseException, todo: list[Task], records: list[TaskRecord]) -> None:
        # Ctrl-C, or an exit from a signal handler (submitit's on SLURM preemption or time limit,
        # before the job is requeued): an interruption, not a failure of the tasks.
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            kept = [r for r in records if r.status in ("ok", "skipped", "encoded")]
            log.warning("%s: %d finished result(s) kept%s; the embedding cache is committed. Rerun the "
                        "same command to finish the rest.",
                        "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped (exit {exc.code})",
                        len(kept), f" ({', '.join(r.task_name for r in kept)})" if kept else "")
            return
        finished = {r.task_name for r in records}
        self.fail([t.info() for t in todo if t.name not in finished], exc, _stage(exc, "task"))

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

    def task(self, info: JobInfo, stack: EncoderStack, task: Task) -> TaskRecord:
        texts = self.job.texts_of(task)
        sink = stack.sink or self.store
        status = sink.done(texts)
        if status is not None:
            return TaskRecord(self.variant.label, task.name, status)
        self.hooks.on_task_start(info, task)
        before, t0 = stack.counters.snapshot(), time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="evalkit-task-") as work:
            ctx = EvalContext(hooks=self.hooks, work_dir=Path(work), stack=stack,
                              model_load_seconds=info.model_load_seconds)
            try:
                with stack.task(texts):
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
        filed = sink.file(self.result(info, stack, task, out, before, t0), out.items)
        record = TaskRecord(self.variant.label, task.name, filed.status, result=filed.result,
                            path=str(filed.path) if filed.path else None)
        self.hooks.on_task_end(info, task, record)
        return record

    def result(self, info: JobInfo, stack: EncoderStack, task: Task, out: TaskOutput, before: dict,
               t0: float) -> ResultFile:
        """The task's output with everything that makes it traceable (the typed evalkit block)."""
        encode = stack.counters.since(before) | {"cache": self.job.encode.cache, "long_docs": self.job.encode.long_docs}
        if stack.cache_path is not None:
            encode["cache_path"] = str(stack.cache_path)
        figures = self.hooks.task_figures(info, task)
        meta = stack.backend.meta
        block = EvalkitBlock(
            model=self.model_block(meta.to_dict()), task=task.info(), main_score=out.main_score,
            config_hash=self.config_hash, encode_config=self.job.encode.scoring(),
            versions=versions(), device=meta.device, date=now(),
            wall_seconds={"model_load": info.model_load_seconds, "task": time.perf_counter() - t0},
            profile=figures.get("profile"), encode=encode, computed=stack.describe() or None, extra=out.extra,
            probe=stack.probe.outcome if stack.probe is not None else None,
        )
        return ResultFile(task_result=out.task_result, evalkit=block)


def _stage(exc: BaseException, otherwise: str) -> str:
    """Where a failure stopped the job, as failure records name it."""
    if isinstance(exc, ProbeError):
        return "probe"
    return "model_load" if isinstance(exc, ModelLoadError) else otherwise


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
