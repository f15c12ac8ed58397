"""Model variants: every configuration that can change a score is its own entry, with a
readable name that says what differs from the model config it came from.

``minilm_l6`` run with ``model.max_length=32`` is ``minilm_l6 · max_length=32`` (folder
``minilm_l6+max_length=32``); ``encode.long_docs=chunk`` adds ``long_docs=chunk``; a task
setting that changes scores (``task.limit``, ``task.subsets``, ``task.instruction``) too. The
differences are the score-relevant fields (the speed-only mark of ``evalkit.fields``)
that differ from the *preset*: the model's YAML in conf/model/ (or the one Hydra composed,
for a user's own config folder), validated with the schema's defaults. A generic preset
(``sentence_transformers``, ``openai_compat``) used without a ``name`` is named after the
model id, so two folders run under it never share a name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalkit.resources import conf_dir
from evalkit.schema import Job
from evalkit.fields import scoring_dump
from evalkit.schema.models import MODEL_CONFIGS, validate_model_config

SEP = " · "
RERANK_SEP = " » "  # first stage » reranker@top_k
MAX_SLUG = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+,\-]")


@dataclass(frozen=True)
class Variant:
    name: str  # the model config's name
    label: str  # for people: "qwen3_0_6b · dimension=256"
    id: str  # for the file system: "qwen3_0_6b+dimension=256"
    differences: tuple[tuple[str, Any], ...] = ()


def load_preset(name: str, _depth: int = 0) -> dict[str, Any] | None:
    """conf/model/<name>.yaml with the files it inherits (``defaults: [base]``) merged in,
    as a plain dict; ``???`` (a value the user must give) stays as is. None if no such file."""
    path = conf_dir() / "model" / f"{name}.yaml"
    if not path.is_file() or _depth > 5:
        return None
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    merged: dict[str, Any] = {}
    for parent in raw.pop("defaults", None) or []:
        if isinstance(parent, str) and parent != "_self_":
            parent = parent.lstrip("/").removeprefix("model/")
            if parent.removeprefix("_") in MODEL_CONFIGS:  # the schema node (evalkit.hydra_configs)
                merged["backend"] = parent.removeprefix("_")
            else:
                merged |= load_preset(parent, _depth + 1) or {}
    return merged | raw


def _preset_scoring(preset: dict[str, Any] | None, model) -> dict[str, Any]:
    if not preset:
        return {}
    given = {k: v for k, v in preset.items() if v != "???"}
    # only the required fields the preset leaves open come from the model: every other field the
    # preset does not name is the schema's default (model.dtype=bfloat16 on minilm_l6 is a variant)
    required = {k for k, info in type(model).model_fields.items() if info.is_required()}
    merged = {**{k: v for k, v in model.model_dump(mode="json").items() if k in required}, **given}
    merged.pop("api_key", None)
    try:
        cfg = validate_model_config(merged)
    except Exception:  # a preset that no longer validates: compare against the raw YAML
        return dict(preset)
    if getattr(cfg, "dtype", None) == "auto" and getattr(model, "dtype", None) not in (None, "auto"):
        from evalkit.encoders.torch_utils import auto_dtype  # torch: only for a preset left at auto

        # what auto resolves to for this device (float32 on CPU): an explicit bfloat16 there is a variant
        cfg = cfg.model_copy(update={"dtype": auto_dtype(getattr(model, "device", "auto"))})
    return scoring_dump(cfg)


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    text = value if isinstance(value, str) else repr(value).replace(" ", "")
    if isinstance(value, str) and (len(text) > 24 or any(c in text for c in " /\n")):
        return "#" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return str(text)


def _generic_base(model, preset_name: str) -> str:
    ident = model.model_ref or preset_name
    ident = str(ident).removeprefix("pypi:").rstrip("/")
    # a hub id never starts with "/", "." or "~": those are folders, named by their last part
    local = ident.startswith(("/", ".", "~")) or ("/" in ident and Path(ident).exists())
    tail = Path(ident).name if local else ident.replace("/", "__")
    return tail or preset_name


def rerank_differences(rerank) -> list[tuple[str, Any]]:
    """A reranker's score-relevant fields that differ from its conf/rerank/<name>.yaml (top_k aside)."""
    path = conf_dir() / "rerank" / f"{rerank.name}.yaml"
    preset = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not isinstance(preset, dict):
        return []
    try:
        theirs = scoring_dump(type(rerank)(**{k: v for k, v in preset.items() if k != "defaults"}))
    except Exception:  # a preset that no longer validates: compare against the raw YAML
        theirs = preset
    return [(k, v) for k, v in sorted(scoring_dump(rerank).items()) if k != "top_k" and k in theirs and theirs[k] != v]


def variant_of(job: Job, preset: dict[str, Any] | None = None) -> Variant:
    """The variant of ``job``'s model; ``preset`` defaults to conf/model/<model.name>.yaml."""
    model = job.model
    preset = preset if preset is not None else load_preset(model.name)
    base = model.name
    ours, theirs = scoring_dump(model), _preset_scoring(preset, model)
    generic = preset is not None and any(v == "???" for v in preset.values())
    skip = {"name"}
    if generic and model.name == (preset or {}).get("name", model.name):
        base = _generic_base(model, model.name)
        skip |= {"model_id", "model"}
    diffs = [(k, v) for k, v in sorted(ours.items()) if k not in skip and k in theirs and theirs[k] != v]
    defaults = type(job.encode)()  # chunk settings count only when chunking (EncodeConfig.scoring)
    diffs += [(k, v) for k, v in sorted(job.encode.scoring().items()) if v != getattr(defaults, k, v)]
    task = scoring_dump(job.task, drop_defaults=True)
    task.pop("names", None)
    diffs += sorted(task.items())
    label = SEP.join([base] + [f"{k}={_short(v)}" for k, v in diffs])
    slug = "+".join([base] + [f"{k}={_short(v)}" for k, v in diffs])
    if job.rerank is not None:  # "qwen3_0_6b » qwen3_reranker_0_6b@100": the reranked run is its own row
        stage = [f"{job.rerank.name}@{job.rerank.top_k}"] + [f"{k}={_short(v)}" for k, v in rerank_differences(job.rerank)]
        diffs.append(("rerank", SEP.join(stage)))
        label += RERANK_SEP + SEP.join(stage)
        slug += "+rerank=" + "+".join(stage)
    slug = _UNSAFE.sub("_", slug)
    if len(slug) > MAX_SLUG:
        slug = slug[: MAX_SLUG - 17] + "+" + hashlib.sha256(slug.encode()).hexdigest()[:16]
    return Variant(name=model.name, label=label, id=slug, differences=tuple(diffs))
