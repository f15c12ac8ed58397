"""Plain-transformers backend for decoder embedding models: Qwen3-Embedding.

What the Qwen3-Embedding model card prescribes, in one place:
  * the tokenizer appends ``<|endoftext|>`` to every input (its post-processor) and pads
    on the left, so the last position of every row holds that EOS token;
  * the embedding is the hidden state at that last token ("last-token pooling");
  * vectors are L2-normalised; a shorter output dimension (Matryoshka) is a prefix of
    the vector, normalised again;
  * queries carry ``Instruct: {instruction}\\nQuery:{text}``, documents are raw
    (see ``evalkit.encoders.instructions``).

sentence-transformers can load Qwen3-Embedding too, but does not expose per-batch padding
and truncation numbers, the dtype/attention knobs, or Matryoshka truncation in one place;
plain transformers keeps the whole recipe readable here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role
from evalkit.encoders.batching import Batching
from evalkit.encoders.local import TorchModelEncoder
from evalkit.encoders.config import QWEN3_DEFAULT_INSTRUCTION, QWEN3_MAX_CONTEXT, Dtype, InstructionFormat, ModelBase
from evalkit.encoders.instructions import format_inputs
from evalkit.encoders.tokens import TokenizerView
from evalkit.errors import ConfigError
from evalkit.fields import speed

if TYPE_CHECKING:
    import torch

log = logging.getLogger("evalkit")
IN_WORKERS = True  # encode.workers / encode.devices: one process per device, each with this backend


class Config(ModelBase):
    """``backend: hf``: decoder embedding models through plain transformers (Qwen3-Embedding)."""

    backend: Literal["hf"] = "hf"
    model_id: str  # hub id (with revision) or a local folder
    dtype: Dtype = "auto"
    device: str = speed("auto")
    attn_implementation: str | None = None  # None: transformers' default (sdpa)
    max_length: int = Field(8192, ge=2, le=QWEN3_MAX_CONTEXT)  # tokens per input, EOS included
    dimension: int | None = Field(None, ge=1)  # Matryoshka output size; None: the hidden size
    batch_size: int = speed(8, ge=1)
    padding_side: Literal["left", "right"] = "left"  # left as the model card; right exists for tests
    normalize: bool = True
    instruction_format: InstructionFormat = "qwen3"
    default_instruction: str = QWEN3_DEFAULT_INSTRUCTION
    trust_remote_code: bool = False

    @property
    def model_ref(self) -> str:
        return self.model_id



def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token, whichever side the padding is on."""
    import torch

    seq_len = attention_mask.shape[1]
    # index of the last 1 in each mask row: flip, find the first 1, count back from the end
    last = seq_len - 1 - attention_mask.flip(dims=[1]).int().argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def warn_if_quadratic_attention(config, dtype: str, device: torch.device) -> None:
    """Grouped-query attention (Qwen3: fewer key/value heads than query heads) in float32 on
    CUDA has no fused SDPA kernel: PyTorch falls back to the math path, which materialises the
    length x length attention matrix. Measured on an H100 with the tiny test Qwen3
    (scripts/gpu_attention_memory.py, docs/gpu/): 18.4 GB at 21.9k tokens in float32 vs
    34 MB in bfloat16. Say so before a long-document run runs out of memory."""
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    attn = getattr(config, "_attn_implementation", None)
    if device.type == "cuda" and dtype == "float32" and heads and kv_heads < heads and attn == "sdpa":
        log.warning(
            "float32 + grouped-query attention on CUDA: attention memory grows with length squared "
            "(no fused kernel); use model.dtype=bfloat16 for long inputs"
        )


def prepare_texts(cfg: Config, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
    """The exact strings the model sees (the cache keys on these)."""
    return format_inputs(texts, role=role, instruction=instruction, instruction_format=cfg.instruction_format,
                         default_instruction=cfg.default_instruction)


def load_tokenizer(cfg: Config):
    from transformers import AutoTokenizer

    local = Path(cfg.model_id).exists()
    return AutoTokenizer.from_pretrained(cfg.model_id, revision=None if local else cfg.revision,
                                         trust_remote_code=cfg.trust_remote_code, padding_side=cfg.padding_side)


def eos_suffix(tokenizer, model_id: str) -> tuple[int, ...]:
    """Recent Qwen3-Embedding revisions append EOS in the tokenizer; older ones did not, and the
    model card then appended it by hand: () or (eos,), whichever the tokenizer needs."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ConfigError(f"{model_id}: tokenizer has no EOS token; last-token pooling needs one")
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return () if probe and probe[-1] == eos else (eos,)


def load_view(cfg: Config) -> TokenizerView:
    """The tokenizer alone (for lengths) when every vector is cached and the model never loads."""
    tokenizer = load_tokenizer(cfg)
    return TokenizerView(tokenizer, cfg.max_length, lambda texts, **kw: prepare_texts(cfg, texts, **kw),
                         extra_suffix=eos_suffix(tokenizer, cfg.model_id))


class HFEncoder(TorchModelEncoder):
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None):
        from transformers import AutoModel

        from evalkit.encoders.torch_utils import model_size, resolve_dtype

        dtype = self._start(cfg, hooks, batching)
        revision = None if Path(cfg.model_id).exists() else cfg.revision
        self.tokenizer = load_tokenizer(cfg)
        kwargs = {"dtype": resolve_dtype(dtype), "trust_remote_code": cfg.trust_remote_code}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        self.model = AutoModel.from_pretrained(cfg.model_id, revision=revision, **kwargs).to(self._device).eval()
        warn_if_quadratic_attention(self.model.config, dtype, self._device)
        hidden = int(self.model.config.hidden_size)
        if cfg.dimension is not None and cfg.dimension > hidden:
            raise ConfigError(f"model {cfg.name}: dimension {cfg.dimension} exceeds the model's hidden size {hidden}")
        suffix = eos_suffix(self.tokenizer, cfg.model_id)
        self.eos_id, self.appends_eos = self.tokenizer.eos_token_id, not suffix
        params, weight_bytes = model_size(self.model)
        self.meta = EncoderMeta(
            name=cfg.name, model_id=cfg.model_id, revision=revision, backend="hf", dim=cfg.dimension or hidden,
            max_tokens=cfg.max_length, pooling="last_token", dtype=dtype, device=str(self._device),
            normalize=cfg.normalize, parameters=params, weight_bytes=weight_bytes,
            extra={"attn_implementation": self.model.config._attn_implementation, "padding_side": cfg.padding_side,
                   "instruction_format": cfg.instruction_format},
        )
        self.view = TokenizerView(self.tokenizer, cfg.max_length, self.prepare, extra_suffix=suffix)
        self._check_ids()

    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        return prepare_texts(self.cfg, texts, role=role, instruction=instruction)

    def _library_ids(self, texts: list[str], limit: int) -> list[list[int]]:
        """transformers' own truncation; over-long inputs lose their tail, never the final EOS."""
        if self.appends_eos:
            return self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
        ids = self.tokenizer(texts, truncation=True, max_length=limit - 1)["input_ids"]
        return [x + [self.eos_id] for x in ids]

    def forward_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Pooled, normalised (and Matryoshka-truncated) float32 vectors on the CPU."""
        torch = self.torch
        with torch.inference_mode():
            enc = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
            enc = {k: enc[k].to(self._device) for k in ("input_ids", "attention_mask")}
            hidden = self.model(**enc).last_hidden_state
            pooled = last_token_pool(hidden, enc["attention_mask"]).float()
            if self.cfg.dimension is not None:
                pooled = pooled[:, : self.cfg.dimension]
            if self.cfg.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            return pooled.cpu().numpy()


def build(cfg: Config, hooks: Hooks = NO_HOOKS, batching: Batching | None = None) -> HFEncoder:
    return HFEncoder(cfg, hooks, batching)
