"""Scale-out of one evaluation (evalkit.encoders.parallel, evalkit.encoders.layers.shard_*): worker processes and shard jobs give the
scores of a single in-process run; dead workers, missing or foreign shards and devices that
do not exist fail with messages that name them; a rerun finishes what a killed run left.

Every test writes its embedding cache and shard stores in its own folder (``fresh_cache``:
the session's built task data linked in), so no test finds another's vectors.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from evalkit.callbacks.base import Callback
from evalkit.errors import ConfigError, DataError
from evalkit.encoders.parallel import EncodeWorkerError
from evalkit.runner import run
from tests.helpers import compose_job, make_job, minilm_cfg, raw_data_dir, run_cli

ZH = dict(names=["zh_longdoc"], limit=5)
STS = dict(names=["STSBenchmark"], limit=100)


def fresh_cache(tmp_path: Path, data_cache: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "data").symlink_to(data_cache / "data")
    return cache


def job_for(tmp_path, cache, spec, encode=None, model=None, overwrite=False):
    spec = dict(spec)
    return make_job(tmp_path, spec.pop("names"), cache_dir=cache, model=model, encode=encode, overwrite=overwrite, **spec)


def scores(record) -> dict:
    """Main score of every (split, subset) of a result, and the task's."""
    out = {(split, sub): s for split, sub, _, s in record.result.subset_scores()}
    out["main"] = record.main_score
    return out


class Events(Callback):
    def __init__(self, kill_at: int | None = None):
        self.batches, self.texts, self.loaded, self.kill_at, self.killed = 0, 0, 0, kill_at, None

    def on_model_loaded(self, job):
        self.loaded += 1

    def on_batch_end(self, report):
        self.batches += 1
        self.texts += report.n_texts
        if self.kill_at is not None and self.batches == self.kill_at and self.killed is None:
            (worker,) = [p for p in multiprocessing.active_children() if p.name == "evalkit-encode-1"]
            os.kill(worker.pid, signal.SIGKILL)  # what the out-of-memory killer does
            self.killed = worker.pid


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_cache):
    """Single-worker, in-process scores (cache off) of the two tasks the tests scale out."""
    tmp = tmp_path_factory.mktemp("reference")
    out = {}
    for name, spec in (("zh", ZH), ("sts", STS)):
        (rec,) = run(job_for(tmp / name, data_cache, spec, encode={"cache": "off"}))
        assert rec.status == "ok"
        out[name] = scores(rec)
    return out


@pytest.mark.slow  # two pools of two worker processes (each loads MiniLM)
@pytest.mark.parametrize("name,spec,extra", [
    ("zh", ZH, {}),
    # chunk mode cuts windows with worker 0's tokenizer view; STS sentences all fit in one
    # window, so their vectors (and scores) are exactly the truncating ones
    ("sts", STS, {"long_docs": "chunk"}),
])
def test_two_workers_give_the_single_worker_scores(tmp_path, data_cache, reference, name, spec, extra):
    cache = fresh_cache(tmp_path, data_cache)
    events = Events()
    (rec,) = run(job_for(tmp_path, cache, spec, encode={"workers": 2, "threads": 1, **extra}), [events])
    assert rec.status == "ok"
    got, want = scores(rec), reference[name]
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-5), k
    block = rec.result.evalkit
    computed = block.computed
    assert computed["workers"] == 2 and computed["devices"] == ["cpu", "cpu"] and computed["threads"] == 1
    rows = computed["per_worker"]
    assert [r["rank"] for r in rows] == [0, 1] and len({r["pid"] for r in rows} | {os.getpid()}) == 3
    # Every text the workers encoded reached this process's hooks (EncodeCounters and callbacks) once.
    assert sum(r["texts"] for r in rows) == block.encode["texts"] == events.texts > 0
    assert sum(r["batches"] for r in rows) == block.encode["batches"] == events.batches
    assert all(r["texts"] > 0 and r["seconds"] > 0 and r["rss_peak_mb"] > 100 for r in rows)  # both worked
    assert computed["total"]["texts"] == events.texts and computed["total"]["wall_seconds"] > 0
    # The split is balanced: neither worker has more than twice the other's tokens.
    tokens = sorted(r["tokens"] for r in rows)
    assert tokens[1] <= 2 * tokens[0]
    saved = json.loads(Path(rec.path).read_text())
    assert saved["evalkit"]["computed"]["per_worker"][1]["texts"] == rows[1]["texts"]
    assert "workers" not in json.dumps(saved["evalkit"]["config_hash"])


def test_split_is_a_balanced_partition():
    """Every index lands in exactly one shard; summed costs are within one text of each
    other (checked against the costs themselves); token estimates rank texts by length."""
    from evalkit.encoders.parallel.pool import balanced_split, estimated_tokens

    rng = np.random.default_rng(0)
    costs = rng.pareto(1.5, 500) * 100 + 1  # a long tail, like document lengths
    for n in (1, 2, 3, 8):
        parts = balanced_split(costs.tolist(), n)
        assert sorted(np.concatenate(parts).tolist()) == list(range(500))
        sums = [costs[p].sum() for p in parts]
        assert max(sums) - min(sums) <= costs.max() + 1e-9
    assert estimated_tokens("第一条 为了规范") == 7 + 2  # one per CJK character, plus the special tokens
    assert estimated_tokens("a longer English sentence, with words") > estimated_tokens("short one")
    assert estimated_tokens("字" * 10_000, limit=256) == 256


@pytest.mark.slow  # two pools (the killed run, the rerun)
def test_killed_worker_fails_the_job_and_a_rerun_finishes_it(tmp_path, data_cache, reference):
    cache = fresh_cache(tmp_path, data_cache)
    encode = {"workers": 2, "threads": 1, "max_batch_texts": 8, "cache_commit_s": 0.01}
    events = Events(kill_at=4)
    with pytest.raises(EncodeWorkerError) as err:
        run(job_for(tmp_path, cache, STS, encode=encode), [events])
    message = str(err.value)
    assert f"encode worker 1 of 2 (cpu, pid {events.killed})" in message
    assert "exit code -9, SIGKILL" in message and "rerun the same command" in message
    (failure,) = (tmp_path / "outputs" / "results").rglob("_failures/STSBenchmark.json")
    failure = json.loads(failure.read_text())
    assert failure["status"] == "failed" and "exit code -9" in failure["error"]

    rerun = Events()
    (rec,) = run(job_for(tmp_path, cache, STS, encode=encode), [rerun])
    assert rec.status == "ok"
    encode_figures = rec.result.evalkit.encode
    assert encode_figures["cache_hits"] > 0  # what the killed run returned was kept, and not encoded again
    assert rerun.texts == encode_figures["texts"] <= encode_figures["cache_misses"]
    for k, v in reference["sts"].items():
        assert scores(rec)[k] == pytest.approx(v, abs=1e-5)


@pytest.mark.parametrize("devices,named", [(["cuda:7"], "cuda:7"), (["cpu", "gpu0"], "gpu0")])
def test_a_device_that_does_not_exist_fails_at_start_naming_it(tmp_path, devices, named):
    events = Events()
    with pytest.raises(ConfigError, match=rf"encode\.devices: '?{named}'? .*valid here: cpu"):
        run(make_job(tmp_path, ["STSBenchmark"], limit=5, encode={"devices": devices}), [events])
    assert events.loaded == 0 and not multiprocessing.active_children()


def test_shard_jobs_then_a_scoring_run_give_the_same_scores(tmp_path, data_cache, reference):
    cache = fresh_cache(tmp_path, data_cache)
    (first,) = run(job_for(tmp_path, cache, ZH, encode={"shard": "0/2"}))
    assert first.status == "encoded" and not list((tmp_path / "outputs").rglob("zh_longdoc.json"))
    # One shard is missing: the scoring run names it and the command that computes it.
    with pytest.raises(ConfigError) as err:
        run(job_for(tmp_path, cache, ZH))
    assert "shard 1/2: no store (never run)" in str(err.value) and "encode.shard=1/2" in str(err.value)
    assert "shard 0/2" not in str(err.value)

    (second,) = run(job_for(tmp_path, cache, ZH, encode={"shard": "1/2"}))
    assert second.status == "encoded"
    stores = sorted((cache / "shards").glob("*/*-of-2"))
    assert [p.name for p in stores] == ["0-of-2", "1-of-2"]
    manifests = [json.loads((p / "manifest.json").read_text()) for p in stores]
    (entry0,), (entry1,) = (list(m["tasks"].values()) for m in manifests)
    assert entry0["status"] == entry1["status"] == "complete" and entry0["texts"] > 0 and entry1["texts"] > 0

    events = Events()
    (rec,) = run(job_for(tmp_path, cache, ZH), [events])
    assert rec.status == "ok" and events.loaded == 0  # every vector came from the shards
    assert rec.result.evalkit.encode["cache_misses"] == 0
    assert scores(rec) == pytest.approx(reference["zh"], abs=1e-5)
    shards = rec.result.evalkit.computed["shards"]
    assert [s["shard"] for s in shards] == ["0/2", "1/2"]
    assert sum(s["texts"] for s in shards) == entry0["texts"] + entry1["texts"]
    # The shards partition the texts: none is in both stores.
    from evalkit.encoders.layers.shard_store import iter_parts

    keys = [{k.tobytes() for keys, _ in iter_parts(p, vectors=False) for k in keys} for p in stores]
    assert keys[0] and keys[1] and not keys[0] & keys[1]

    # A store that lost vectors (a part file deleted) is never scored as a partial corpus:
    # into a fresh cache, the texts missing from every shard stop the job, unencoded.
    next(stores[1].glob("part-*.npz")).unlink()
    events = Events()
    with pytest.raises(DataError, match=r"text\(s\) of this task are in no shard .*Not scoring a partial corpus"):
        run(job_for(tmp_path, cache, ZH, overwrite=True, encode={"cache_path": str(tmp_path / "fresh.sqlite")}), [events])
    assert events.loaded == 0 and events.batches == 0


def test_shards_of_another_model_config_are_refused(tmp_path, data_cache):
    cache = fresh_cache(tmp_path, data_cache)
    spec = dict(names=["STSBenchmark"], limit=20)
    other = minilm_cfg(max_length=128)
    run(job_for(tmp_path, cache, spec, encode={"shard": "0/2"}, model=other))
    with pytest.raises(ConfigError, match=r"different model config \(model\.max_length: 128 in the shards, 256 here\)"):
        run(job_for(tmp_path, cache, spec))


def test_a_killed_shard_resumes_without_recomputing(tmp_path, data_cache):
    class Stop(Callback):
        def __init__(self):
            self.texts = []

        def on_batch_end(self, report):
            self.texts.append(report.n_texts)
            if len(self.texts) == 3:
                raise DataError("stopped on purpose")  # like a job killed mid-task

    cache = fresh_cache(tmp_path, data_cache)
    spec = dict(names=["STSBenchmark"], limit=60)
    encode = {"shard": "1/2", "max_batch_texts": 4, "cache_commit_s": 0.01}
    stop = Stop()
    with pytest.raises(DataError, match="stopped on purpose"):
        run(job_for(tmp_path, cache, spec, encode=encode), [stop])
    (store,) = (cache / "shards").glob("*/1-of-2")
    from evalkit.encoders.layers.shard_store import iter_parts

    kept = sum(len(k) for k, _ in iter_parts(store, vectors=False))
    assert kept == sum(stop.texts[:2]) > 0  # the two batches before the stop were stored
    events = Events()
    (rec,) = run(job_for(tmp_path, cache, spec, encode=encode), [events])
    (entry,) = json.loads((store / "manifest.json").read_text())["tasks"].values()
    assert entry["status"] == "complete" and entry["encoded"] == events.texts == entry["texts"] - kept


@pytest.mark.slow  # hydra CLI processes: a 2-job submitit array, then the scoring run
def test_submitit_local_launcher_runs_the_shard_array(tmp_path, data_cache, reference):
    cache = fresh_cache(tmp_path, data_cache)
    common = ["task=mteb", "task.names=[STSBenchmark]", "task.limit=100", f"paths.cache_dir={cache}"]
    proc = run_cli(["-m", "hydra/launcher=local", "encode.shard=0/2,1/2", *common], tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stores = sorted((cache / "shards").glob("*/*-of-2"))
    assert [p.name for p in stores] == ["0-of-2", "1-of-2"]
    pids = {next(iter(json.loads((p / "manifest.json").read_text())["tasks"].values()))["pid"] for p in stores}
    assert len(pids) == 2  # two processes of the launcher
    assert not list((tmp_path / "outputs" / "results").rglob("STSBenchmark.json"))  # shard jobs score nothing
    # The scoring run: the same config without encode.shard (composed as the CLI would, run here).
    job = compose_job([*common, f"paths.root={tmp_path / 'outputs'}", f"paths.raw_data={raw_data_dir()}"])
    events = Events()
    (rec,) = run(job, [events])
    assert rec.status == "ok" and events.loaded == 0
    assert rec.main_score == pytest.approx(reference["sts"]["main"], abs=1e-5)
    assert [s["shard"] for s in rec.result.evalkit.computed["shards"]] == ["0/2", "1/2"]
    assert {s["store"] for s in rec.result.evalkit.computed["shards"]} == {str(p) for p in stores}
