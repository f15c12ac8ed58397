"""evalkit's scores are mteb's scores: the CLI vs mteb.evaluate on the same model and data."""

from __future__ import annotations

import json

import mteb
import pytest
from sentence_transformers import SentenceTransformer

from evalkit.tasks.mteb_mirror import load_mirrored_task
from tests.helpers import minilm_path, raw_data_dir, run_cli

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")


def mteb_direct_score(task_name: str, limit: int | None = None) -> float:
    """Independent path: mteb.evaluate on a plain SentenceTransformer, same mirrored data."""
    task = load_mirrored_task(task_name, raw_data_dir(), limit=limit).mteb_task
    model = SentenceTransformer(minilm_path(), device="cpu")
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False)
    return float(result.task_results[0].get_score())


@pytest.mark.parametrize(
    "task_name, limit",
    [("STSBenchmark", None), ("Banking77Classification", 600)],
)
def test_cli_score_equals_mteb_evaluate(task_name, limit, tmp_path):
    args = ["model=minilm_l6", "task=mteb", f"task.names=[{task_name}]"]
    if limit:
        args.append(f"task.limit={limit}")
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    variant = "minilm_l6" + (f"+limit={limit}" if limit else "")  # a limited run is its own variant
    files = list((tmp_path / "outputs" / "results" / variant).glob(f"*/{task_name}.json"))
    assert len(files) == 1, files
    data = json.loads(files[0].read_text())
    ours = data["evalkit"]["main_score"]
    expected = mteb_direct_score(task_name, limit)
    assert ours == pytest.approx(expected, abs=1e-6)
    # The console summary table shows the same score.
    assert f"{ours:.4f}" in proc.stdout
    assert task_name in proc.stdout


def test_result_file_is_mteb_loadable_and_traceable(tmp_path):
    proc = run_cli(["task=mteb", "task.names=[STSBenchmark]", "task.limit=100"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = next((tmp_path / "outputs" / "results").glob("minilm_l6+limit=100/*/STSBenchmark.json"))

    # mteb's own loader reads our file.
    loaded = mteb.TaskResult.from_disk(path)
    assert loaded.task_name == "STSBenchmark"
    block = json.loads(path.read_text())["evalkit"]
    assert loaded.get_score() == pytest.approx(block["main_score"], abs=1e-6)

    # mteb's ResultCache layout: results/<model>/<revision>/ with model_meta.json.
    assert (path.parent / "model_meta.json").exists()
    cache = mteb.ResultCache(cache_path=tmp_path / "outputs")
    bench = cache.load_results(require_model_meta=True)
    names = {tr.task_name for m in bench.model_results for tr in m.task_results}
    assert "STSBenchmark" in names

    # Provenance block.
    assert block["model"]["config"]["backend"] == "sentence_transformers"
    assert block["model"]["config"]["dtype"] == "float32"  # dtype: auto, resolved on the CPU
    assert block["task"]["fingerprint"].startswith("sha256:")
    assert block["config_hash"].startswith("sha256:")
    for pkg in ("evalkit", "mteb", "torch", "transformers"):
        assert block["versions"][pkg]
    assert block["device"] == "cpu"
    assert block["wall_seconds"]["task"] > 0
