"""The built distribution works on its own: sdist -> wheel -> a fresh venv, run from an empty folder.

The wheel is installed non-editable into a new venv made without pip and without system
site-packages. Only *after* the install, a ``.pth`` file appends this test venv's
site-packages to the new venv's sys.path, so torch, mteb, … are reused without installing
them again. A ``.pth`` line that is a plain path is only appended to sys.path (the ``.pth``
files inside that folder are not run), so the checkout's editable finder
(``__editable__…finder.py``, started by a ``.pth`` there) never becomes active, and the new
venv's own site-packages comes first. Installing before the ``.pth`` exists also keeps pip
from seeing, and skipping or touching, the editable evalkit of this venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

from tests.helpers import REPO, raw_data_dir

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DIST_NAME = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
# What the sdist is built from; anything else the build needs must be added here and to the sdist.
SOURCE_ITEMS = ["pyproject.toml", "README.md", "evalkit", "conf", "tasks", "hydra_plugins"]


def repo_files(folder: str, patterns: tuple[str, ...]) -> set[str]:
    """Files under REPO/folder matching the package-data globs, relative to the folder."""
    root = REPO / folder
    return {p.relative_to(root).as_posix() for pat in patterns for p in root.glob(pat) if p.is_file()}


CONF_FILES = repo_files("conf", ("**/*.yaml",))
TASK_FILES = repo_files("tasks", ("*.yaml", "*.md"))


def test_every_code_package_is_listed_in_pyproject():
    # Fast guard: the package list is kept by hand (see pyproject), so a new subpackage must
    # be added there or the wheel would silently lack it.
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(REPO), include=["evalkit", "evalkit.*"]))
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"evalkit._conf", "evalkit._tasks", "hydra_plugins.evalkit_slurm"}
    assert "hydra/launcher/local.yaml" in CONF_FILES and "config.yaml" in CONF_FILES


def test_checkout_version_matches_pyproject():
    import evalkit
    from evalkit.version import SOURCE_VERSION

    # The constant stands in for the metadata in a plain checkout: it must follow pyproject.
    assert SOURCE_VERSION == VERSION
    line = evalkit.version_line()
    assert line.startswith(f"evalkit {evalkit.__version__} (") and line.endswith(f", import package evalkit, at {REPO / 'evalkit'})")
    assert DIST_NAME in line


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build sdist + wheel (wheel from the sdist) from a copy of the sources; install the wheel."""
    base = tmp_path_factory.mktemp("package")
    src, dist, venv, empty = base / "src", base / "dist", base / "venv", base / "empty"
    src.mkdir()
    empty.mkdir()
    for item in SOURCE_ITEMS:  # a copy: the build writes *.egg-info into its source folder
        path = REPO / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / item)
    env = _clean_env()
    # --no-isolation: the build backend (setuptools) of this venv, no download.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)], base, env)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")

    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], base, env)
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], empty, env).stdout.strip())
    (purelib / "_evalkit_test_parent_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return {"wheel": wheel, "sdist": sdist, "venv": venv, "python": python, "purelib": purelib, "empty": empty, "env": env}


def test_wheel_and_sdist_carry_every_conf_and_task_file(installed):
    wheel = zipfile.ZipFile(installed["wheel"])
    names = set(wheel.namelist())
    for rel in CONF_FILES:
        assert wheel.read(f"evalkit/_conf/{rel}") == (REPO / "conf" / rel).read_bytes(), rel
    for rel in TASK_FILES:
        assert wheel.read(f"evalkit/_tasks/{rel}") == (REPO / "tasks" / rel).read_bytes(), rel
    assert {n.removeprefix("evalkit/_conf/") for n in names if n.startswith("evalkit/_conf/")} == CONF_FILES
    assert {n.removeprefix("evalkit/_tasks/") for n in names if n.startswith("evalkit/_tasks/")} == TASK_FILES
    assert "evalkit/leaderboard/leaderboard.schema.json" in names
    assert wheel.read("evalkit/data/sources.lock.json") == (REPO / "evalkit/data/sources.lock.json").read_bytes()
    code = {p.relative_to(REPO).as_posix() for p in (REPO / "evalkit").rglob("*.py") if "__pycache__" not in p.parts}
    assert code <= names, sorted(code - names)
    plugin = {p.relative_to(REPO).as_posix() for p in (REPO / "hydra_plugins").rglob("*.py") if "__pycache__" not in p.parts}
    assert plugin and plugin <= names and "hydra_plugins/__init__.py" not in names  # a namespace Hydra scans
    assert not any(n.startswith(("tests/", "conf/", "tasks/", "bench/")) for n in names)

    top = f"{DIST_NAME.replace('-', '_')}-{VERSION}"
    assert installed["wheel"].name == f"{top}-py3-none-any.whl"
    metadata = wheel.read(f"{top}.dist-info/METADATA").decode()
    assert re.search(rf"^Name: {re.escape(DIST_NAME)}$", metadata, re.M)
    assert "evalkit = evalkit.__main__:cli" in wheel.read(f"{top}.dist-info/entry_points.txt").decode()

    with tarfile.open(installed["sdist"]) as sdist:
        members = {m.removeprefix(f"{top}/") for m in sdist.getnames()}
    assert {f"conf/{rel}" for rel in CONF_FILES} <= members
    assert {f"tasks/{rel}" for rel in TASK_FILES} <= members


def test_installed_package_is_imported_from_the_new_venv_and_finds_its_files(installed):
    probe = (
        "import json, evalkit, importlib.metadata as md\n"
        "from evalkit.resources import conf_dir, tasks_dir\n"
        "print(json.dumps({'file': evalkit.__file__, 'conf': str(conf_dir()), 'tasks': str(tasks_dir()),\n"
        "  'task_files': sorted(p.name for p in tasks_dir().iterdir()),\n"
        "  'version': evalkit.__version__, 'meta_version': md.version(%r), 'line': evalkit.version_line()}))\n" % DIST_NAME
    )
    out = json.loads(_run([str(installed["python"]), "-c", probe], installed["empty"], installed["env"]).stdout)
    pkg = installed["purelib"] / "evalkit"
    assert Path(out["file"]) == pkg / "__init__.py"
    assert Path(out["conf"]) == pkg / "_conf"
    assert Path(out["tasks"]) == pkg / "_tasks"
    assert out["task_files"] == sorted(TASK_FILES)
    assert out["version"] == out["meta_version"] == VERSION
    assert out["line"] == f"evalkit {VERSION} (distribution {DIST_NAME}, import package evalkit, at {pkg})"


def test_installed_hydra_finds_the_slurm_launcher(installed):
    # Hydra loads launchers only from its plugin namespace: the wheel's hydra_plugins/evalkit_slurm.
    cmd = [str(installed["venv"] / "bin" / "evalkit"), "hydra/launcher=slurm", "--cfg", "hydra", "-p", "hydra.launcher._target_"]
    proc = _run(cmd, installed["empty"], installed["env"])
    assert proc.stdout.strip() == "hydra_plugins.evalkit_slurm.launcher.EvalkitSlurmLauncher"


def test_console_script_version_names_the_distribution(installed):
    # `evalkit --version` prints evalkit.version_line() (lead: __main__.cli).
    proc = _run([str(installed["venv"] / "bin" / "evalkit"), "--version"], installed["empty"], installed["env"])
    assert f"evalkit {VERSION} (distribution {DIST_NAME}, import package evalkit" in proc.stdout
    assert str(installed["purelib"] / "evalkit") in proc.stdout


@pytest.mark.slow
def test_installed_cli_scores_stsbenchmark_from_an_empty_folder(installed, tmp_path):
    """Issue 14's acceptance test: the installed console script, no checkout in sight."""
    from tests.test_core_scores import mteb_direct_score

    env = {**installed["env"], "EVALKIT_RAW_DATA": str(raw_data_dir()), "EVALKIT_OUTPUT_DIR": str(tmp_path / "outputs")}
    cmd = [str(installed["venv"] / "bin" / "evalkit"), "task=mteb", "task.names=[STSBenchmark]"]
    proc = _run(cmd, installed["empty"], env, timeout=900)
    (result,) = (tmp_path / "outputs" / "results").glob("minilm_l6/*/STSBenchmark.json")
    block = json.loads(result.read_text())["evalkit"]
    assert block["versions"]["evalkit"] == VERSION
    # Independent path: mteb.evaluate on a plain SentenceTransformer in this (checkout) process.
    assert block["main_score"] == pytest.approx(mteb_direct_score("STSBenchmark"), abs=1e-6)
    assert f"{block['main_score']:.4f}" in proc.stdout
    assert list(installed["empty"].iterdir()) == []  # outputs went where EVALKIT_OUTPUT_DIR said


@pytest.mark.slow
def test_installed_cli_runs_zh_longdoc_from_an_empty_folder_with_only_a_data_mirror(installed, tmp_path, raw_dir):
    """Issue 18's acceptance test: no raw-data folder anywhere, EVALKIT_DATA_MIRROR pointing at a
    loopback mirror of the upstreams; the installed console script pulls into the platform cache,
    verifies, builds and scores — with the data fingerprint of the reference folder."""
    from evalkit.schema import PathsConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex
    from tests.fixtures.data_mirror import DataMirror, debian_package

    deb, why = debian_package()
    if deb is None:
        pytest.skip(f"zh_longdoc's manpages need the real Debian package: {why}")
    mirror = DataMirror(raw_dir, deb)
    try:
        env = {k: v for k, v in installed["env"].items() if not k.startswith("EVALKIT_")}
        env.update(EVALKIT_DATA_MIRROR=mirror.url, XDG_CACHE_HOME=str(tmp_path / "xdg"),
                   EVALKIT_OUTPUT_DIR=str(tmp_path / "outputs"))
        cmd = [str(installed["venv"] / "bin" / "evalkit"), "task=zh_longdoc", "task.limit=20"]
        proc = _run(cmd, installed["empty"], env, timeout=900)
    finally:
        mirror.close()
    (result,) = (tmp_path / "outputs" / "results").glob("minilm_l6*/*/zh_longdoc.json")
    block = json.loads(result.read_text())["evalkit"]
    reference = TaskIndex().load("zh_longdoc", TaskConfig(names=["zh_longdoc"], limit=20),
                                 PathsConfig(raw_data=str(raw_dir), cache_dir=str(tmp_path / "reference")))
    assert block["task"]["fingerprint"] == reference.fingerprint
    assert f"{block['main_score']:.4f}" in proc.stdout
    assert (tmp_path / "xdg" / "evalkit" / "raw" / "laws").is_dir()
    assert list(installed["empty"].iterdir()) == []
