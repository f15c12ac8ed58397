"""``backend: jina``: Jina embeddings v2 computed natively (evalkit.encoders.jina_bert), without
Jina's remote code — which fails on transformers 5 and, patched, silently gives wrong vectors.

The checkpoint's own files (config.json, model.safetensors or pytorch_model.bin, tokenizer,
sentence-transformers pooling files) at the pinned revision are all it reads; see
``evalkit.encoders.jina_checkpoint``. Texts go in as they are (Jina v2 has no instructions or
prefixes): ``[CLS] … [SEP]`` from the model's own tokenizer, right padding, mean pooling over
the real tokens, L2 normalisation as the checkpoint's sentence-transformers modules say (the
Jina v2 repos: none; cosine scores are the same either way) unless ``normalize`` is set.
Equivalence with Jina's code: tests/test_jina_native.py against tests/fixtures/jina_tiny.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role
from evalkit.encoders.batching import Batching
from evalkit.encoders.config import Dtype, ModelBase
from evalkit.encoders.local import TorchModelEncoder
from evalkit.encoders.tokens import TokenizerView
from evalkit.fields import speed

if TYPE_CHECKING:  # torch and the model code load with the model, not with the config schema
    import torch

    from evalkit.encoders.jina_bert import JinaBert

log = logging.getLogger("evalkit.encoders")
IN_WORKERS = True  # encode.workers / encode.devices: one process per device, each with this backend


class Config(ModelBase):
    """``backend: jina``: Jina embeddings v2 (JinaBERT, ALiBi) computed natively, no remote code."""

    backend: Literal["jina"] = "jina"
    model_id: str  # hub id (with revision) or a local folder holding the checkpoint's own files
    dtype: Dtype = "auto"
    device: str = speed("auto")
    max_length: int = Field(8192, ge=2)  # tokens per input, [CLS] and [SEP] included; longer inputs lose their tail
    batch_size: int = speed(8, ge=1)
    normalize: bool | None = None  # None: as the checkpoint's sentence-transformers modules say (Jina v2: no)

    @property
    def model_ref(self) -> str:
        return self.model_id


def _revision(cfg: Config) -> str | None:
    return None if Path(cfg.model_id).expanduser().exists() else cfg.revision


def load_tokenizer(cfg: Config):
    from transformers import AutoTokenizer

    local = Path(cfg.model_id).expanduser()
    source = str(local) if local.exists() else cfg.model_id
    return AutoTokenizer.from_pretrained(source, revision=_revision(cfg), trust_remote_code=False)


def prepare_texts(texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
    """Jina v2 sees every text as it is: no instruction, no role prefix."""
    return list(texts)


def load_view(cfg: Config) -> TokenizerView:
    """The tokenizer alone (for lengths) when every vector is cached and the model never loads."""
    return TokenizerView(load_tokenizer(cfg), cfg.max_length, prepare_texts)


def load_model(cfg: Config, dtype: torch.dtype, device: torch.device) -> tuple[JinaBert, dict]:
    """The encoder with the checkpoint's weights, checked key by key (no random initialisation:
    the model is built on the meta device and every tensor comes from the file)."""
    import torch

    from evalkit.encoders.jina_bert import JinaBert, JinaBertShape
    from evalkit.encoders.jina_checkpoint import checked_state, checkpoint_files, read_state, st_normalizes

    files = checkpoint_files(cfg.model_id, _revision(cfg))
    shape = JinaBertShape.from_config(files.config)
    normalize = st_normalizes(files, shape.emb_pooler)
    with torch.device("meta"):
        model = JinaBert(shape)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state, layout = checked_state(read_state(files.weights), expected, f"{files.source} ({files.weights.name})")
    model.load_state_dict(state, assign=True)
    model = model.to(device=device, dtype=dtype).eval()
    return model, {"weights": files.weights.name, "key_layout": layout, "st_normalize": normalize,
                   "feed_forward_type": shape.feed_forward_type, "heads": shape.num_attention_heads}


class JinaEncoder(TorchModelEncoder):
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None):
        from evalkit.encoders.torch_utils import model_size, resolve_dtype

        dtype = self._start(cfg, hooks, batching)
        self.model, info = load_model(cfg, resolve_dtype(dtype), self._device)
        self.normalize = info["st_normalize"] if cfg.normalize is None else cfg.normalize
        self.tokenizer = load_tokenizer(cfg)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        params, weight_bytes = model_size(self.model)
        self.meta = EncoderMeta(
            name=cfg.name, model_id=cfg.model_id, revision=_revision(cfg), backend="jina",
            dim=self.model.shape.hidden_size, max_tokens=cfg.max_length, pooling="mean", dtype=dtype,
            device=str(self._device), normalize=self.normalize, parameters=params, weight_bytes=weight_bytes,
            extra=info)
        self.view = TokenizerView(self.tokenizer, cfg.max_length, prepare_texts)
        self._check_ids()
        if not self.fast_ids:
            log.info("%s: evalkit's token ids differ from the tokenizer's own; using the tokenizer per batch", cfg.name)

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        return prepare_texts(texts, role=role, instruction=instruction)

    def _library_ids(self, texts: list[str], limit: int) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]

    def forward_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Mean-pooled (optionally normalised) float32 vectors of right-padded ids."""
        from evalkit.encoders.jina_bert import mean_pool

        torch = self.torch
        with torch.inference_mode():
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([x + [self.pad_id] * (width - len(x)) for x in ids], device=self._device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=self._device)
            pooled = mean_pool(self.model(input_ids, mask), mask)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            return pooled.cpu().numpy()


def build(cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None) -> JinaEncoder:
    return JinaEncoder(cfg, hooks, batching)
