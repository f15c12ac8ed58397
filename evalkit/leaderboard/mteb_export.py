"""Copy the leaderboard's ok results into mteb's results-folder layout.

``<out>/results/<model>/<revision>/<Task>.json`` plus ``model_meta.json``, so that mteb's
own tools read evalkit results::

    mteb.ResultCache(cache_path=<out>).load_results(include_remote=False)

The files are the result files unchanged (mteb ignores the extra ``evalkit`` key). Failed
and missing cells are not written: mteb has no notion of a failed run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evalkit.leaderboard.schema import Leaderboard
from evalkit.results import NO_REVISION, atomic_write_json, safe_name


def write_mteb_layout(lb: Leaderboard, out_dir: Path) -> list[Path]:
    models = {m.id: m for m in lb.models}
    written = []
    for cell in lb.cells:
        if cell.status != "ok" or not cell.result_file:
            continue
        model = models[cell.model]
        revision = model.revision or NO_REVISION
        name = model.variant_id or model.name  # one mteb model per variant: never two configs in one folder
        folder = Path(out_dir) / "results" / safe_name(name) / safe_name(revision)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "model_meta.json"
        if not meta.exists():
            atomic_write_json(meta, _model_meta(name, revision, model.dimension, model.max_tokens))
        target = folder / Path(cell.result_file).name
        if Path(cell.result_file).resolve() != target.resolve():
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(cell.result_file, tmp)
            tmp.replace(target)  # atomic, like every other result write
        written.append(target)
    return written


def _model_meta(name: str, revision: str, dimension: int | None, max_tokens: int | None) -> dict:
    # What mteb's loaders read (name, revision) plus two informative fields. A full ModelMeta
    # would not validate anyway: mteb wants "organization/model" names.
    return {"name": name, "revision": revision, "embed_dim": dimension, "max_tokens": max_tokens}
