"""Task data anyone can get (issue 18): the sources lock, pull / verify / bundle, first use.

A loopback server (tests/fixtures/data_mirror.py) serves the reference raw-data folder under
the upstream URL paths of the lock, and the real Debian package manpages-zh (from apt); every
pull here goes through EVALKIT_DATA_MIRROR to it. Faults are injected by that server: tampered
bytes, a transfer cut mid-file, 404, a stalled answer.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from evalkit.data import lock, store, verify
from evalkit.data.__main__ import main as data_cli
from evalkit.data.deb import apt_mirror
from evalkit.data.pull import FetchSettings, pull
from evalkit.errors import DataError
from evalkit.tasks.mteb_mirror import MIRROR_FILES
from tests.fixtures.data_mirror import DataMirror, debian_package
from tests.helpers import REPO

ALL = lock.entries_for(lock.all_needs())
FAST_BUILDERS = ("laws", "manpages", "drcd", "cosqa", "tatoeba")  # built twice below: about 2 s in all


@pytest.fixture(scope="module")
def deb():
    return debian_package()


@pytest.fixture(scope="module")
def mirror(raw_dir, deb):
    server = DataMirror(raw_dir, deb[0], stall_s=3.0)
    yield server
    server.close()


@pytest.fixture
def server(mirror):
    """The module's mirror with no faults left over and fresh counters."""
    mirror.faults.clear()
    mirror.requests.clear()
    mirror.injected.clear()
    yield mirror
    mirror.faults.clear()


def needs_deb(deb):
    if deb[0] is None:
        pytest.skip(f"the manpages-zh part needs the real Debian package: {deb[1]}")


@pytest.fixture(scope="module")
def pulled_all(tmp_path_factory, mirror, deb):
    """Every locked file pulled through the mirror into an empty folder (manpages-zh only with the .deb)."""
    folder = tmp_path_factory.mktemp("pulled") / "raw"
    entries = [e for e in ALL if deb[0] is not None or e.source.origin != "deb"]
    summary = pull(entries, folder, FetchSettings(mirror=mirror.url), progress="off")
    assert sum(summary.fetched.values()) == len(entries)
    return folder


def settings(server, **kw) -> FetchSettings:
    return FetchSettings(mirror=server.url, **kw)


# -- the lock ---------------------------------------------------------------------------------

def test_lock_is_written_from_the_reference_folder_and_matches_it(raw_dir):
    made = lock.make_lock(raw_dir)
    assert made == lock.load_lock()  # every file there, none missing, same bytes
    assert lock.lock_text(made) == lock.LOCK_PATH.read_text(encoding="utf-8")  # the committed file is the command's output
    assert verify.check(ALL, raw_dir, lock.all_needs()).clean  # and no unlocked file inside a source folder


def test_every_file_a_builder_or_mirror_reads_is_locked(raw_dir):
    for name in store.BUILDERS:
        args = getattr(store.builder_module(name), "ARGS", None)
        needs = store.builder_needs(f"{name}:{args[0]}" if args else name, raw_dir)
        if name != "stdlib":  # the interpreter's own Lib/
            assert lock.entries_for(needs), name
    for task, files in MIRROR_FILES.items():
        assert [e.rel for e in lock.entries_for(files)] == sorted(files), task
    with pytest.raises(DataError, match="not in the sources lock"):
        lock.entries_for(["laws-v2"])


def test_urls_follow_the_upstream_layout_and_the_mirror_rule():
    sources = lock.load_lock()
    law = next(rel for rel in sources["laws"].files if "宪法" in rel)
    url = sources["laws"].url(law)
    assert url.startswith("https://raw.githubusercontent.com/LawRefBook/Laws/2f4c5c23716267af9dbebbbbd6cbbf732b101981/")
    assert "%E5%AE%AA%E6%B3%95" in url and "宪法" not in url  # UTF-8, percent-encoded
    assert sources["cosqa"].url("cosqa/LICENSE").endswith("/14ebcacf9e9bc3e7109102632bc63047876f27d2/LICENSE")
    assert sources["cosqa"].url("cosqa/code_idx_map.txt").endswith("/data/search/code_idx_map.txt")
    assert sources["tatoeba"].upstream_path("tatoeba/tatoeba.cmn-eng.cmn") == "data/tatoeba/v1/tatoeba.cmn-eng.cmn"
    assert sources["stsb"].url("stsb/stsb-en-test.csv", "http://m:1/base/") == (
        "http://m:1/base/raw.githubusercontent.com/PhilipMay/stsb-multi-mt/30de0dec4ee199b7f42351d3f1a0b19592955385/data/stsb-en-test.csv")
    man = sources["manpages-zh"]
    assert man.upstream_path("manpages-zh/zh_CN/man1/ls.1.gz") == "usr/share/man/zh_CN/man1/ls.1.gz"
    assert man.upstream_path("manpages-zh/copyright") == "usr/share/doc/manpages-zh/copyright"
    assert man.deb_url("http://deb.mirror.test/debian/") == f"http://deb.mirror.test/debian/{man.pool_path}"
    assert man.deb_url(None, "http://m:1") == f"http://m:1/debian/{man.pool_path}"  # a fixed mirror path
    with pytest.raises(DataError, match="EVALKIT_DEBIAN_MIRROR"):
        man.deb_url(None)


def test_debian_mirror_comes_from_the_apt_sources(tmp_path):
    (tmp_path / "a.list").write_text("# comment\ndeb [arch=amd64] http://sec.mirror.test/debian bookworm-security main\n"
                                     "deb-src http://src.mirror.test/debian bookworm main\n")
    (tmp_path / "b.sources").write_text("Types: deb\nURIs: http://other.test/nodejs\nSuites: nodistro\n\n"
                                        "Types: deb\nURIs: http://main.mirror.test/debian/\nSuites: bookworm bookworm-updates\n"
                                        "Components: main\n")
    assert apt_mirror([tmp_path]) == "http://main.mirror.test/debian"
    assert apt_mirror([tmp_path / "none"]) is None


def test_without_a_debian_mirror_the_pull_stops_before_any_download(monkeypatch, tmp_path):
    from evalkit.data import deb

    monkeypatch.setattr(deb, "APT_SOURCES", (tmp_path / "no-apt",))
    with pytest.raises(DataError, match="Debian package manpages-zh 1.6.4.0-1: set EVALKIT_DEBIAN_MIRROR"):
        pull(lock.entries_for(["manpages-zh", "tatoeba"]), tmp_path / "raw", FetchSettings(), progress="off")
    assert not (tmp_path / "raw" / "tatoeba").exists()


# -- pull -------------------------------------------------------------------------------------

def test_pull_all_gives_the_reference_files_and_the_same_fingerprints(pulled_all, raw_dir, deb, tmp_path):
    def tree(root):
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    skip = set() if deb[0] is not None else {"manpages-zh"}
    assert tree(pulled_all) == [rel for rel in tree(raw_dir) if rel.split("/")[0] not in skip]
    for name in store.BUILDERS:  # the build key (builder version + names and sizes of the raw files) is the same
        args = getattr(store.builder_module(name), "ARGS", None)
        builder = f"{name}:{args[0]}" if args else name
        if name != "manpages" or not skip:
            assert store.build_key(builder, pulled_all) == store.build_key(builder, raw_dir), builder
    for name in FAST_BUILDERS:  # and the built data is byte for byte the same
        if name == "manpages" and skip:
            continue
        _, from_pull = store.ensure_built(name, pulled_all, tmp_path / "a")
        _, from_reference = store.ensure_built(name, raw_dir, tmp_path / "b")
        assert from_pull["fingerprint"] == from_reference["fingerprint"], name


def test_mteb_mirrors_read_the_pulled_files(pulled_all, raw_dir):
    from evalkit.tasks.mteb_mirror import load_mirrored_task

    for name in MIRROR_FILES:
        pulled = load_mirrored_task(name, pulled_all, limit=5, fetch=FetchSettings(offline=True))
        reference = load_mirrored_task(name, raw_dir, limit=5, fetch=FetchSettings(offline=True))
        assert pulled.fingerprint == reference.fingerprint, name


def test_a_rerun_fetches_only_what_is_missing_or_wrong(server, tmp_path):
    entries = lock.entries_for(MIRROR_FILES["Tatoeba"] + ["drcd"])
    folder = tmp_path / "raw"
    pull(entries, folder, settings(server), progress="off")
    assert server.total and sum(server.requests.values()) == len(entries)
    (folder / "tatoeba/tatoeba.cmn-eng.cmn").unlink()
    target = folder / "tatoeba/tatoeba.yue-eng.eng"
    target.write_bytes(b"X" + target.read_bytes()[1:])  # same size, other bytes
    server.requests.clear()
    summary = pull(entries, folder, settings(server), progress="off")
    assert sorted(k.rsplit("/", 1)[-1] for k in server.requests) == ["tatoeba.cmn-eng.cmn", "tatoeba.yue-eng.eng"]
    assert summary.fetched == {"tatoeba": 2} and summary.present == {"drcd": 2, "tatoeba": 2}
    assert verify.check(entries, folder).clean
    assert not (folder / ".pull").exists()


def test_a_tampered_download_is_refused_named_and_fetched_again_once(server, tmp_path, caplog):
    rel = "tatoeba/tatoeba.cmn-eng.cmn"
    entry = lock.entries_for([rel])[0]
    server.inject(rel, "tamper")
    with caplog.at_level(logging.WARNING, logger="evalkit.data"):
        pull([entry], tmp_path / "ok", settings(server), progress="off")
    assert server.injected["tamper"] == 1 and (tmp_path / "ok" / rel).read_bytes()[:1] != b""
    refusal = next(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    assert rel in refusal and entry.sha256 in refusal and "fetching it again" in refusal

    server.inject(rel, "tamper", "tamper")
    with pytest.raises(DataError) as err:
        pull([entry], tmp_path / "bad", settings(server), progress="off")
    message = str(err.value)
    assert rel in message and entry.sha256 in message and "after 2 attempts" in message
    actual = message.split("got ")[1].split()[0]
    assert len(actual) == 64 and actual != entry.sha256
    assert not (tmp_path / "bad" / rel).exists() and not (tmp_path / "bad" / ".pull").exists()


def test_a_transfer_cut_mid_file_is_fetched_again_and_completes(server, tmp_path):
    rel = "drcd/DRCD_dev.json"
    server.inject(rel, "cut")
    pull(lock.entries_for(["drcd"]), tmp_path, settings(server), progress="off")
    assert server.injected["cut"] == 1 and server.requests[server.path_of(rel)] == 2
    assert verify.check(lock.entries_for(["drcd"]), tmp_path).clean


def test_404_names_the_url_and_the_other_routes_and_exits_nonzero(server, tmp_path, capsys):
    rel = "cosqa/code_idx_map.txt"
    server.inject(rel, "404", "404")
    rc = data_cli(["--raw-data", str(tmp_path), "pull", "code_search", "--mirror", server.url, "--progress", "off"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "HTTP 404" in err and f"{server.url}/{server.path_of(rel)}" in err
    assert "EVALKIT_DATA_MIRROR" in err and "--bundle" in err
    assert not (tmp_path / rel).exists()


def test_no_network_names_the_url(tmp_path):
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:9/raw\.githubusercontent\.com/.* no connection"):
        pull(lock.entries_for(["tatoeba/README.md"]), tmp_path, FetchSettings(mirror=closed), progress="off")


def test_a_full_disk_leaves_no_half_file(server, tmp_path):
    """A real full disk: a 3 MB tmpfs for the 4.3 MB of drcd (root only, where mounting works)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.strip()}")
    try:
        with pytest.raises(DataError, match="no space left on the device"):
            pull(lock.entries_for(["drcd"]), folder, settings(server), progress="off")
        state = verify.check(lock.entries_for(["drcd"]), folder, ["drcd"])
        assert state.missing and not state.modified and not state.extra
        assert sorted(p.name for p in folder.iterdir()) == ["drcd"] or not any(folder.iterdir())
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_stalled_server_times_out_with_a_clear_error(server, tmp_path):
    rel = "tatoeba/tatoeba.cmn-eng.eng"
    server.inject(rel, "stall", "stall")
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"no answer within 0.5 s \(EVALKIT_DATA_TIMEOUT\)"):
        pull(lock.entries_for([rel]), tmp_path, settings(server, timeout_s=0.5), progress="off")
    assert time.perf_counter() - t0 < 6
    assert not (tmp_path / rel).exists()


def test_ctrl_c_mid_pull_keeps_only_verified_files_and_a_rerun_completes(server, tmp_path):
    stalled, other = "cosqa/code_idx_map.txt", "cosqa/cosqa-retrieval-test-500.json"
    server.stall_s = 30.0
    server.inject(stalled, "stall")
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_RAW_DATA"}
    cmd = [sys.executable, "-m", "evalkit.data", "--raw-data", str(tmp_path), "pull", "code_search",
           "--mirror", server.url, "--progress", "lines"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (server.requests[server.path_of(stalled)] and (tmp_path / other).exists()):
            time.sleep(0.1)
        assert server.requests[server.path_of(stalled)] == 1, "the stalled transfer never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        server.stall_s = 3.0
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    state = verify.check(lock.entries_for([stalled, other]), tmp_path, ["cosqa"])
    assert not (tmp_path / stalled).exists() and [e.rel for e in state.ok] == [other] and not state.extra
    assert not (tmp_path / ".pull").exists()  # its staging folder went on the way out
    dead = tmp_path / ".pull" / "999999999"  # as a `kill -9` mid-transfer leaves it: pid gone, half a file
    dead.mkdir(parents=True)
    (dead / "tmpabc123").write_bytes(b"half")
    summary = pull(lock.entries_for([stalled, other]), tmp_path, settings(server), progress="off")
    assert summary.fetched == {"cosqa": 1} and summary.present == {"cosqa": 1}
    assert not (tmp_path / ".pull").exists()  # the killed pull's staging folder went with the rerun


# -- first use, offline, a modified folder, bundles -------------------------------------------

def test_first_use_pulls_what_a_builder_needs_after_one_line(server, tmp_path, caplog, raw_dir):
    with caplog.at_level(logging.INFO, logger="evalkit.data"):
        _, meta = store.ensure_built("tatoeba", tmp_path / "raw", tmp_path / "cache", fetch=settings(server))
    line = next(r.getMessage() for r in caplog.records if "fetching" in r.getMessage())
    assert "data builder 'tatoeba'" in line and "2 files of tatoeba (0.1 MB, GitHub facebookresearch/LASER@74bc6ae)" in line
    assert str(tmp_path / "raw") in line and server.url in line
    assert meta["fingerprint"] == store.ensure_built("tatoeba", raw_dir, tmp_path / "ref")[1]["fingerprint"]


def test_offline_names_the_missing_sources_the_pull_command_and_the_bundle(tmp_path):
    from evalkit.schema import PathsConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex

    paths = PathsConfig(raw_data=str(tmp_path / "raw"), cache_dir=str(tmp_path / "cache"), offline=True)
    with pytest.raises(DataError) as err:
        TaskIndex().load("zh_longdoc", TaskConfig(names=["zh_longdoc"]), paths)
    message = str(err.value)
    assert "offline" in message and "sources: drcd, laws, manpages-zh" in message and str(tmp_path / "raw") in message
    assert "python -m evalkit.data pull all" in message and "--bundle" in message
    assert not (tmp_path / "raw").exists()


def test_a_modified_or_extra_file_in_a_raw_folder_is_named_never_built(raw_dir, tmp_path):
    folder = tmp_path / "raw"
    for name in ("drcd", "tatoeba"):
        shutil.copytree(raw_dir / name, folder / name)
    target = folder / "drcd/DRCD_dev.json"
    data = target.read_bytes()
    target.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(DataError) as err:
        store.ensure_built("drcd", folder, tmp_path / "cache", fetch=FetchSettings(offline=True))
    expected = lock.entries_for(["drcd/DRCD_dev.json"])[0].sha256
    assert f"{target}: expected sha256 {expected}" in str(err.value)
    assert f"found {verify.sha256_file(target)}" in str(err.value)
    assert not (tmp_path / "cache").exists()  # nothing built

    (folder / "laws").mkdir()
    shutil.copy2(raw_dir / "laws" / "README.md", folder / "laws" / "README.md")
    (folder / "laws" / "notes.md").write_text("第一条 为了测试。\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"extra: .*laws/notes\.md: not in the sources lock"):
        store.ensure_built("laws", folder, tmp_path / "cache", fetch=FetchSettings(offline=True))

def test_verify_names_modified_and_extra_files(raw_dir, tmp_path, capsys):
    folder = tmp_path / "raw"
    shutil.copytree(raw_dir / "tatoeba", folder / "tatoeba")
    (folder / "tatoeba" / "tatoeba.cmn-eng.cmn").write_text("你好\n", encoding="utf-8")
    (folder / "tatoeba" / "tatoeba.fra-eng.fra").write_text("bonjour\n", encoding="utf-8")
    assert data_cli(["verify", str(folder), "--task", "Tatoeba"]) == 1
    out = capsys.readouterr().out
    assert f"modified: {folder}/tatoeba/tatoeba.cmn-eng.cmn: expected sha256" in out
    assert f"extra: {folder}/tatoeba/tatoeba.fra-eng.fra" in out
    assert "3 of 4 locked files verified, 0 missing, 1 modified, 1 extra" in out


def test_bundle_then_verify_then_a_run_with_only_the_bundle(pulled_all, raw_dir, tmp_path, capsys):
    from evalkit.schema import PathsConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex

    task = "code_search"  # its raw data is small (CoSQA); zh_longdoc's way is the same, with the .deb's pages
    out = tmp_path / "evalkit-data.tar"
    assert data_cli(["--raw-data", str(pulled_all), "--offline", "bundle", str(out), task]) == 0
    assert data_cli(["verify", str(out), "--task", task]) == 0
    assert data_cli(["verify", str(out)]) == 1  # a one-task bundle lacks the other sources
    assert "missing" in capsys.readouterr().out

    empty = tmp_path / "elsewhere"
    assert data_cli(["--raw-data", str(empty), "--offline", "pull", task, "--bundle", str(out)]) == 0
    cfg = TaskConfig(names=[task], limit=3, subsets=["cosqa"])  # stdlib reads no raw data
    loaded = TaskIndex().load(task, cfg, PathsConfig(raw_data=str(empty), cache_dir=str(tmp_path / "c1"), offline=True))
    reference = TaskIndex().load(task, cfg, PathsConfig(raw_data=str(raw_dir), cache_dir=str(tmp_path / "c2"), offline=True))
    assert loaded.fingerprint == reference.fingerprint

    bad = tmp_path / "bad.tar"
    data = bytearray(out.read_bytes())
    data[1024] ^= 1  # inside the first member's bytes (a header is 512 bytes; the first file is MBs long)
    bad.write_bytes(bytes(data))
    assert data_cli(["verify", str(bad), "--task", task]) == 1
    assert "modified:" in capsys.readouterr().out


@pytest.mark.slow
def test_a_fresh_checkout_without_raw_data_runs_with_only_a_mirror(server, deb, tmp_path):
    """`make run`'s honest, cheap equivalent: a copy of the checkout with nothing beside it, the
    suite's interpreter, no EVALKIT_RAW_DATA: the run pulls into the platform cache and scores."""
    needs_deb(deb)
    clone = tmp_path / "evalkit"
    for item in ("evalkit", "conf", "tasks", "pyproject.toml", "Makefile", "README.md"):
        src = REPO / item
        (shutil.copytree(src, clone / item, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy2(src, clone / item))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALKIT_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), EVALKIT_DATA_MIRROR=server.url, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "evalkit", "task=zh_longdoc", "task.limit=1"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "needs raw data that is not in" in out and "via the mirror" in out
    assert any(line.startswith("minilm_l6") and "zh_longdoc" in line and "ok" in line for line in out.splitlines())
    pulled = tmp_path / "xdg" / "evalkit" / "raw"
    assert verify.check(lock.entries_for(["laws", "drcd", "manpages-zh/zh_CN"]), pulled, ["laws"]).clean
