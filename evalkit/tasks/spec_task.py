"""A task from a spec (``tasks/<name>.yaml`` built in, or a user's YAML) as an mteb task.

A spec names, per subset, a data builder (built and cached from the raw-data folder by
:mod:`evalkit.data.store`) or a data folder; either way the data is read by
:mod:`evalkit.data.beir` and handed to a plain subclass of mteb's ``AbsTaskRetrieval`` /
``AbsTaskBitextMining`` in exactly the in-memory layout mteb's own loaders produce, so mteb's
evaluators do the scoring.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

from evalkit.data import beir, raw, store
from evalkit.errors import ConfigError, unknown_name
from evalkit.tasks.mteb_task import MtebTask
from evalkit.tasks.spec import SubsetSpec, TaskSpec

READER_VERSION = "1"  # bump when reading or limiting changes the data a score comes from
DISTRACTORS_PER_QUERY = 10  # with task.limit=N: N queries, about 10*N documents


def spec_task(spec: TaskSpec, base: Path, cfg, raw_dir, cache_dir, *, source: str, fetch=None) -> MtebTask:
    """The spec's subsets (``cfg.subsets`` of them), at ``cfg.limit``, as a loaded mteb task."""
    subsets = spec.subset_specs()
    wanted = list(subsets)
    if getattr(cfg, "subsets", None) and spec.subsets:
        unknown = [s for s in cfg.subsets if s not in subsets]
        if unknown:
            raise unknown_name(f"subset of {spec.name}", unknown[0], list(subsets))
        wanted = [s for s in subsets if s in cfg.subsets]
    limit = getattr(cfg, "limit", None)
    builders = [subsets[s].builder for s in wanted if subsets[s].builder]
    if builders:  # the raw files of every subset at once: one line, one pull (if any is missing)
        raw_dir = raw.default_raw_dir() if raw_dir is None else Path(raw_dir)
        needs = sorted({n for b in builders for n in store.builder_needs(b, raw_dir)})
        raw.ensure_raw(needs, raw_dir, fetch, what=f"task {spec.name}")

    dataset, skipped, fingerprints, positions = {}, {}, {}, {}
    for subset in wanted:
        sub = subsets[subset]
        folder, fingerprints[subset] = _subset_folder(sub, base, raw_dir, cache_dir, fetch)
        if spec.type == "Retrieval":
            dataset[subset], sub_skipped, where = _retrieval_split(folder, spec.split, limit)
            if where:
                positions[subset] = where
        else:
            dataset[subset], sub_skipped = _pairs_split(folder, limit), {}
        for reason, count in sub_skipped.items():
            skipped[reason if len(wanted) == 1 else f"{subset}/{reason}"] = count

    payload = json.dumps({"data": fingerprints, "limit": limit, "reader": READER_VERSION, "type": spec.type}, sort_keys=True)
    fingerprint = "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:16]
    task = make_mteb_task(spec, wanted, fingerprint)
    task.dataset = {s: {spec.split: data} for s, data in dataset.items()}
    task.data_loaded = True
    return MtebTask(task, fingerprint=fingerprint, source=source, instruction=spec.instruction, skipped_rows=skipped,
                    limit=limit, subsets=getattr(cfg, "subsets", None), extra={"subset_fingerprints": fingerprints,
                           "mteb_datasets": sorted({d for s in wanted for d in spec.subset_specs()[s].mteb_datasets})},
                    positions=positions)


def _subset_folder(sub: SubsetSpec, base: Path, raw_dir, cache_dir, fetch=None) -> tuple[Path, str]:
    if sub.builder is not None:
        folder, meta = store.ensure_built(sub.builder, raw_dir, cache_dir, fetch=fetch)
        return folder, meta["fingerprint"]
    path = Path(sub.data).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise ConfigError(f"task data not found: {path} (a relative 'data:' is relative to the spec file)")
    files = [p for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path]
    return path, store.files_fingerprint(files, extra="user-data")


def _retrieval_split(folder: Path, split: str, limit: int | None) -> tuple[dict, dict, dict]:
    """mteb's in-memory retrieval split, the rows skipped, and the evidence positions of the
    queries asked ({query: [(document, start, end)]}; evalkit.tasks.by_depth)."""
    data = beir.read_retrieval(folder, split)
    query_ids = list(data.queries)
    doc_ids = list(data.corpus)
    if limit is not None and limit < len(query_ids):
        query_ids = query_ids[:limit]
        relevant = {d for q in query_ids for d in data.qrels[q]}
        budget = max(len(relevant), DISTRACTORS_PER_QUERY * limit)
        distractors = [d for d in doc_ids if d not in relevant][: max(0, budget - len(relevant))]
        keep = relevant | set(distractors)
        doc_ids = [d for d in doc_ids if d in keep]  # file order, so the result does not depend on set order
    corpus = Dataset.from_dict(
        {
            "id": doc_ids,
            "title": [data.corpus[d][0] for d in doc_ids],
            "text": [data.corpus[d][1] for d in doc_ids],
        }
    )
    queries = Dataset.from_dict({"id": query_ids, "text": [data.queries[q] for q in query_ids]})
    qrels = {q: dict(data.qrels[q]) for q in query_ids}
    positions = {q: [(e.doc_id, e.start, e.end) for e in data.evidence[q]] for q in query_ids if q in data.evidence}
    return {"corpus": corpus, "queries": queries, "relevant_docs": qrels, "top_ranked": None}, data.skipped, positions


def _pairs_split(folder: Path, limit: int | None) -> Dataset:
    path = folder / "pairs.jsonl" if folder.is_dir() else folder
    s1, s2 = beir.read_pairs(path)
    return Dataset.from_dict({"sentence1": s1[:limit], "sentence2": s2[:limit]})


def make_mteb_task(spec: TaskSpec, subsets: list[str], fingerprint: str):
    """An mteb task object whose metadata comes from the spec (no Hub: data is set by the caller)."""
    subset_specs = spec.subset_specs()
    if spec.subsets:
        eval_langs = {s: list(subset_specs[s].languages or spec.languages) for s in subsets}
    else:
        eval_langs = list(spec.languages)
    metadata = TaskMetadata(
        name=spec.name,
        description=spec.description or f"evalkit task {spec.name}",
        reference=spec.reference,
        dataset={"path": f"evalkit/{spec.name}", "revision": fingerprint},
        type=spec.type,
        category="t2t",
        modalities=["text"],
        eval_splits=[spec.split],
        eval_langs=eval_langs,
        main_score=spec.main_metric,
        license=None,
        prompt={"query": spec.instruction} if spec.instruction else None,
    )
    base = AbsTaskRetrieval if spec.type == "Retrieval" else AbsTaskBitextMining
    cls = type(f"Evalkit_{spec.name}", (base,), {"metadata": metadata, "__module__": __name__})
    return cls()
