"""A Jina v2 checkpoint's own files, found and checked before a vector is computed.

``checkpoint_files`` finds ``config.json``, the weights (``model.safetensors``, else
``pytorch_model.bin``) and the sentence-transformers module files in a local folder, or
downloads exactly those through ``huggingface_hub`` at the pinned revision (the Hub cache
answers offline). No modelling code is fetched and none is run: ``trust_remote_code`` plays no
part here.

``checked_state`` takes the weights under either key layout found in the wild — plain
(``embeddings.…``, ``encoder.layer.N.…``) or under ``bert.`` beside an MLM head (a
``JinaBertForMaskedLM`` state dict) — and refuses a checkpoint with missing keys, unexpected
keys inside the encoder, or wrong shapes, naming them. Keys the sentence vector never uses
(``pooler.*``, the MLM head ``cls.*``, BERT's ``position_ids`` buffer) are set aside.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from evalkit.errors import ConfigError

log = logging.getLogger("evalkit.encoders")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ST_FILES = ("modules.json", "1_Pooling/config.json")
IGNORED_PREFIXES = ("pooler.", "cls.", "embeddings.position_ids", "embeddings.token_type_ids")
ST_MODULES = {"sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
              "sentence_transformers.models.Normalize"}
SHOWN = 8  # keys named in an error before "... and N more"


@dataclass
class CheckpointFiles:
    source: str  # the folder or "hub id@revision", for messages
    config: Path
    weights: Path
    modules: Path | None = None  # modules.json
    pooling: Path | None = None  # 1_Pooling/config.json


def checkpoint_files(model_id: str, revision: str | None) -> CheckpointFiles:
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
        if weights is None:
            raise ConfigError(f"{folder}: no weights file; expected one of {', '.join(WEIGHT_FILES)}")
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder}: no config.json")
        modules, pooling = (folder / n for n in ST_FILES)
        return CheckpointFiles(str(folder), folder / "config.json", weights,
                               modules if modules.is_file() else None, pooling if pooling.is_file() else None)
    return _hub_files(model_id, revision)


def _hub_files(repo: str, revision: str | None) -> CheckpointFiles:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    source = f"{repo}@{revision or 'main'}"

    def fetch(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo, name, revision=revision))
        except EntryNotFoundError:  # not in the repo at this revision, or (offline) not in the cache
            return None

    config = fetch("config.json")
    if config is None:
        raise ConfigError(f"{source}: config.json not found (offline: is the model in the Hugging Face cache?)")
    weights = next((p for p in map(fetch, WEIGHT_FILES) if p is not None), None)
    if weights is None:
        raise ConfigError(f"{source}: none of {', '.join(WEIGHT_FILES)} found (offline: is the model in the cache?)")
    modules, pooling = (fetch(n) for n in ST_FILES)
    return CheckpointFiles(source, config, weights, modules, pooling)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: no pickled code runs
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _names(keys, what: str) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return f"{what} ({len(keys)}): {', '.join(keys[:SHOWN])}{more}"


def checked_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Size],
                  where: str) -> tuple[dict[str, torch.Tensor], str]:
    """(the encoder's tensors under the model's key names, "plain" | "bert."): or an error naming
    every missing, unexpected and mis-shaped key."""
    layout = "bert." if any(k.startswith("bert.") for k in state) else "plain"
    if layout == "bert.":
        state = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}
    ignored = {k for k in state if k.startswith(IGNORED_PREFIXES)}
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys() - ignored
    wrong = [f"{k} {tuple(state[k].shape)} (model: {tuple(expected[k])})"
             for k in sorted(expected.keys() & state.keys()) if state[k].shape != expected[k]]
    problems = [_names(missing, "missing keys")] if missing else []
    problems += [_names(unexpected, "unexpected keys")] if unexpected else []
    problems += [_names(wrong, "wrong shapes")] if wrong else []
    if problems:
        raise ConfigError(f"{where}: not a JinaBERT v2 checkpoint matching its config.json ({layout} key layout):\n  "
                          + "\n  ".join(problems))
    if ignored:
        log.debug("%s: keys not used for sentence vectors: %s", where, sorted(ignored))
    return {k: state[k] for k in expected}, layout


def st_normalizes(files: CheckpointFiles, emb_pooler: str | None) -> bool:
    """Whether the checkpoint's sentence-transformers pipeline L2-normalises its vectors; any
    pipeline other than Transformer -> mean Pooling (-> Normalize) is refused."""
    where = files.source
    if emb_pooler not in (None, "mean"):
        raise ConfigError(f"{where}: config.json emb_pooler {emb_pooler!r}; the native Jina backend pools by mean")
    modules = json.loads(files.modules.read_text(encoding="utf-8")) if files.modules else []
    other = [m.get("type") for m in modules if m.get("type") not in ST_MODULES]
    if other:
        raise ConfigError(f"{where}: modules.json has modules the native Jina backend does not compute: {other}")
    if files.pooling is not None:
        pooling = json.loads(files.pooling.read_text(encoding="utf-8"))
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            raise ConfigError(f"{where}: 1_Pooling/config.json pools by {modes}; the native Jina backend pools by mean")
    return any(m.get("type", "").endswith(".Normalize") for m in modules)
