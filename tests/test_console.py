"""Living with evalkit: a quiet console with evalkit's own progress, Ctrl-C, damaged files,
unwritable folders, dtype auto, and mteb benchmarks by name offline."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.runner import resolved, run
from tests.helpers import REPO, make_job, minilm_cfg, raw_data_dir, run_cli

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

SMALL = ["task=mteb", "task.names=[STSBenchmark]", "task.limit=200"]


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "EVALKIT_RAW_DATA": str(raw_data_dir()),
            "EVALKIT_OUTPUT_DIR": str(tmp_path / "outputs"), "TERM": "xterm"}


def test_quiet_console_and_the_log_file_has_the_library_lines(tmp_path):
    proc = run_cli(SMALL, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = proc.stdout + proc.stderr
    assert "[mteb" not in console and "[transformers" not in console and "Loading weights" not in console
    assert "evalkit.progress" in console and "texts (done)" in console  # evalkit's own progress lines
    assert "cosine_spearman" in proc.stdout  # the summary table
    (log,) = (tmp_path / "outputs" / "runs").glob("*/evalkit.log")
    assert "[mteb" in log.read_text(encoding="utf-8")  # the libraries' lines are kept, in the log file
    loud = run_cli(SMALL + ["verbose=true", "overwrite=true"], tmp_path)
    assert "[mteb" in loud.stdout + loud.stderr


def test_progress_is_a_live_bar_on_a_terminal(tmp_path):
    """A real pseudo-terminal: tqdm redraws one line (carriage returns) with texts/s and cache hits."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", *SMALL, "encode.cache=off"], cwd=REPO,
                            env=_env(tmp_path), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = out.decode("utf-8", errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "STSBenchmark symmetric" in text and "text/s" in text and "\r" in text and "cached=" in text
    assert "evalkit.progress" not in text  # a bar, not periodic log lines


def test_ctrl_c_keeps_finished_results_and_exits_130(tmp_path):
    """SIGINT in the middle of the second task: the first task's result stays, one line says so."""
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "task=mteb", "task.names=[STSBenchmark,zh_longdoc]",
                             "task.limit=200", "encode.cache_commit_s=0.5"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    results = tmp_path / "outputs" / "results"
    deadline = time.monotonic() + 300
    while not list(results.glob("*/*/STSBenchmark.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    time.sleep(1.0)  # into zh_longdoc's long documents: a minute of encoding on 2 cores
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: 1 finished result(s) kept (STSBenchmark)" in out + err
    assert "Traceback" not in out + err
    assert list(results.glob("*/*/STSBenchmark.json")) and not list(results.glob("*/*/zh_longdoc.json"))


def test_truncated_result_file_is_recomputed_and_named(tmp_path, caplog):
    job = make_job(tmp_path, ["STSBenchmark"], limit=30, encode={"cache": "off"})
    (first,) = run(job)
    Path(first.path).write_text(Path(first.path).read_text()[:200])  # a disk that filled up, say
    (again,) = run(job)
    assert again.status == "ok" and json.loads(Path(again.path).read_text())["evalkit"]["main_score"]
    assert "not a complete evalkit result" in caplog.text and first.path in caplog.text


def test_unreadable_failure_record_is_ignored(tmp_path, caplog):
    from evalkit.leaderboard import build_leaderboard

    job = make_job(tmp_path, ["STSBenchmark"], limit=30, encode={"cache": "off"})
    (rec,) = run(job)
    bad = Path(rec.path).parent / "_failures" / "Tatoeba.json"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("{not json")
    lb = build_leaderboard([job.paths.results])
    assert [c.task for c in lb.cells] == ["STSBenchmark"] and str(bad) in caplog.text


def test_damaged_task_data_is_rebuilt(tmp_path, caplog):
    from evalkit.data import store

    folder, meta = store.ensure_built("cosqa", raw_data_dir(), tmp_path)
    corpus = folder / "corpus.jsonl"
    corpus.write_text(corpus.read_text()[: len(corpus.read_text()) // 2])  # half-written
    again, meta2 = store.ensure_built("cosqa", raw_data_dir(), tmp_path)
    assert meta2["fingerprint"] == meta["fingerprint"] and "damaged or incomplete" in caplog.text
    assert len(corpus.read_text().splitlines()) == meta["counts"]["documents"]


def test_unwritable_folders_are_one_clear_error_before_any_model_loads(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_cli(SMALL + [f"paths.results_dir={blocker}/results"], tmp_path, timeout=120)
    assert proc.returncode != 0 and f"{blocker}/results" in proc.stderr and "not writable" in proc.stderr
    assert "Traceback" not in proc.stderr and "could not be loaded" not in proc.stderr
    proc = run_cli(SMALL + [f"encode.cache_path={blocker}/cache/e.sqlite"], tmp_path, timeout=120)
    assert proc.returncode != 0 and "embedding cache" in proc.stderr and "encode.cache=off" in proc.stderr


def test_dtype_auto_is_float32_on_cpu_and_recorded_resolved(tmp_path):
    auto = resolved(make_job(tmp_path, ["STSBenchmark"], model=minilm_cfg(dtype="auto")))
    f32 = resolved(make_job(tmp_path, ["STSBenchmark"], model=minilm_cfg(dtype="float32")))
    assert auto.model.dtype == "float32" and auto.config_hash() == f32.config_hash()
    from evalkit.encoders.layers.cache import model_identity, model_key

    assert model_key(model_identity(auto.model)) == model_key(model_identity(f32.model))


def test_benchmark_offline_names_missing_tasks_and_skips_them_on_request(tmp_path, shared_embeddings):
    proc = run_cli(["task=benchmark", "task.benchmark='MTEB(eng, v2)'"], tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "of 41 tasks have no data here" in proc.stderr and "task.missing=skip" in proc.stderr
    assert "Banking77Classification" in proc.stderr and "STSBenchmark" in proc.stderr  # the ones that can run
    ok = run_cli(["task=benchmark", "task.benchmark='MTEB(eng, v2)'", "task.missing=skip", "task.limit=80",
                  f"encode.cache_path={shared_embeddings}"], tmp_path,
                 timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    done = sorted(p.stem for p in (tmp_path / "outputs" / "results").glob("*/*/*.json") if p.name != "model_meta.json")
    assert done == ["Banking77Classification", "STSBenchmark"]
