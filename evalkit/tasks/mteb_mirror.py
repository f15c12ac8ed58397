"""Standard MTEB tasks with their data read from a local mirror of the raw upstream files.

mteb's own task classes and evaluators do the scoring; only ``load_data`` is replaced:
we fill ``task.dataset`` in exactly the layout mteb's Hub loader produces (after its
``dataset_transform``) and mark the data as loaded. The raw files are pinned upstream in the sources lock
(``evalkit/data/sources.lock.json``); ``MIRROR_FILES`` says which each task reads, and they are
verified (pulled on first use) before they are read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from datasets import Dataset, DatasetDict

from evalkit.data.store import files_fingerprint
from evalkit.errors import DataError

MIRROR_VERSION = "1"


def _read_csv(path: Path, *, header: bool) -> list[list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DataError(f"raw data file missing: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc})") from None
    return rows[1:] if header else rows


def _sts_split(path: Path, limit: int | None) -> Dataset:
    rows = _read_csv(path, header=False)
    out = {"sentence1": [], "sentence2": [], "score": []}
    for lineno, row in enumerate(rows, 1):
        if len(row) != 3:
            raise DataError(f"{path}:{lineno}: expected 's1,s2,score', got {len(row)} fields")
        out["sentence1"].append(row[0])
        out["sentence2"].append(row[1])
        out["score"].append(float(row[2]))
    return Dataset.from_dict({k: v[:limit] for k, v in out.items()})


def _stsb(raw: Path, task, limit):
    return DatasetDict({"test": _sts_split(raw / "stsb" / "stsb-en-test.csv", limit)}), [raw / "stsb" / "stsb-en-test.csv"]


def _stsb_multi(raw: Path, task, limit):
    files, data = [], {}
    for lang in task.hf_subsets:
        data[lang] = DatasetDict()
        for split in task.eval_splits:
            path = raw / "stsb" / f"stsb-{lang}-{split}.csv"
            data[lang][split] = _sts_split(path, limit)
            files.append(path)
    return data, files


def _banking77(raw: Path, task, limit):
    folder = raw / "banking77"
    labels = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
    index = {name: i for i, name in enumerate(labels)}
    splits = {}
    for split in ("train", "test"):
        path = folder / f"{split}.csv"
        text, label = [], []
        for lineno, row in enumerate(_read_csv(path, header=True), 2):
            if len(row) != 2 or row[1] not in index:
                raise DataError(f"{path}:{lineno}: expected 'text,category' with a known category, got {row!r}")
            text.append(row[0])
            label.append(index[row[1]])
        n = limit if split == "test" else None
        splits[split] = Dataset.from_dict({"text": text[:n], "label": label[:n]})
    return DatasetDict(splits), [folder / "categories.json", folder / "train.csv", folder / "test.csv"]


def _tatoeba(raw: Path, task, limit):
    data, files = {}, []
    for subset in task.hf_subsets:  # e.g. "cmn-eng": sentence1 is cmn, sentence2 is eng
        src, tgt = subset.split("-")
        base = raw / "tatoeba" / f"tatoeba.{subset}"
        p1, p2 = Path(f"{base}.{src}"), Path(f"{base}.{tgt}")
        s1 = p1.read_text(encoding="utf-8").splitlines()
        s2 = p2.read_text(encoding="utf-8").splitlines()
        if len(s1) != len(s2):
            raise DataError(f"{p1} has {len(s1)} lines but {p2} has {len(s2)}: files must be aligned")
        data[subset] = DatasetDict({"test": Dataset.from_dict({"sentence1": s1[:limit], "sentence2": s2[:limit]})})
        files += [p1, p2]
    return data, files


# task name -> the raw files its loader reads (paths under the raw-data folder, all in the lock)
MIRROR_FILES: dict[str, list[str]] = {
    "STSBenchmark": ["stsb/stsb-en-test.csv"],
    "STSBenchmarkMultilingualSTS": [f"stsb/stsb-{lang}-{split}.csv" for lang in ("en", "zh") for split in ("dev", "test")],
    "Banking77Classification": [f"banking77/{name}" for name in ("categories.json", "train.csv", "test.csv")],
    "Tatoeba": [f"tatoeba/tatoeba.{pair}.{lang}" for pair in ("cmn-eng", "yue-eng") for lang in (pair[:3], "eng")],
}

# task name -> (subsets the mirror has, or None for the task's single default subset; loader)
MIRRORS: dict[str, tuple[list[str] | None, Callable]] = {
    "STSBenchmark": (None, _stsb),
    "STSBenchmarkMultilingualSTS": (["en", "zh"], _stsb_multi),
    "Banking77Classification": (None, _banking77),
    "Tatoeba": (["cmn-eng", "yue-eng"], _tatoeba),
}


def load_mirrored_task(name: str, raw_dir: Path | None, *, subsets: list[str] | None = None, limit: int | None = None,
                       fetch=None):
    """The mteb task with its data read from the mirror, as an evalkit task. Its raw files are
    verified against the sources lock first and pulled if missing (``fetch``: see
    :func:`evalkit.data.raw.ensure_raw`; ``raw_dir`` None: the default raw-data folder)."""
    import mteb

    from evalkit.data.raw import ensure_raw
    from evalkit.tasks.mteb_task import MtebTask

    raw_dir = ensure_raw(MIRROR_FILES[name], raw_dir, fetch, what=f"the MTEB mirror of {name}")
    available, loader = MIRRORS[name]
    task = mteb.get_task(name)
    if available is not None:
        wanted = subsets or available
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise DataError(f"{name}: the local mirror has subsets {available}, not {missing}")
        task = task.filter_languages(None, hf_subsets=wanted)
    data, files = loader(Path(raw_dir), task, limit)
    task.dataset = data
    task.data_loaded = True
    fingerprint = files_fingerprint([Path(f) for f in files], extra=f"mirror-v{MIRROR_VERSION};limit={limit}")
    return MtebTask(task, fingerprint=fingerprint, source="mteb-mirror", limit=limit, subsets=subsets)
