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
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from evalkit.encoders.base import NO_HOOKS, EncoderMeta, Hooks, Role
from evalkit.encoders.instructions import QWEN3_DEFAULT_INSTRUCTION, InstructionFormat, format_inputs
from evalkit.encoders.local import LocalEncoder
from evalkit.encoders.torch_utils import resolve_device, resolve_dtype
from evalkit.errors import ConfigError

log = logging.getLogger("evalkit")

MAX_CONTEXT = 32768  # Qwen3-Embedding's trained context


class Config(BaseModel):
    """Fields of a ``backend: hf`` model config (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["hf"] = "hf"
    name: str
    model_id: str  # hub id (with revision) or a local folder
    revision: str | None = None  # hub commit; ignored for a local folder
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    attn_implementation: str | None = None  # None: transformers' default (sdpa); eager | flash_attention_2
    max_length: int = Field(8192, ge=2, le=MAX_CONTEXT)  # tokens per input, EOS included
    dimension: int | None = Field(None, ge=1)  # Matryoshka output size; None: full hidden size
    batch_size: int = Field(8, ge=1)
    padding_side: Literal["left", "right"] = "left"  # left as the model card; right exists for tests
    normalize: bool = True
    instruction_format: InstructionFormat = "qwen3"
    default_instruction: str = QWEN3_DEFAULT_INSTRUCTION  # for queries of tasks without one
    trust_remote_code: bool = False


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token, whichever side the padding is on."""
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


class HFEncoder(LocalEncoder):
    def __init__(self, cfg: Config, hooks: Hooks = NO_HOOKS):
        from transformers import AutoModel, AutoTokenizer

        self.cfg = cfg
        self.hooks = hooks
        self.batch_size = cfg.batch_size
        self.device = torch.device(resolve_device(cfg.device))
        local = Path(cfg.model_id).exists()
        revision = None if local else cfg.revision
        self.tokenizer = AutoTokenizer.from_pretrained(
            cfg.model_id, revision=revision, trust_remote_code=cfg.trust_remote_code, padding_side=cfg.padding_side
        )
        kwargs = {"dtype": resolve_dtype(cfg.dtype), "trust_remote_code": cfg.trust_remote_code}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        self.model = AutoModel.from_pretrained(cfg.model_id, revision=revision, **kwargs).to(self.device).eval()
        warn_if_quadratic_attention(self.model.config, cfg.dtype, self.device)
        hidden = int(self.model.config.hidden_size)
        if cfg.dimension is not None and cfg.dimension > hidden:
            raise ConfigError(f"model {cfg.name}: dimension {cfg.dimension} exceeds the model's hidden size {hidden}")
        self.eos_id = self.tokenizer.eos_token_id
        if self.eos_id is None:
            raise ConfigError(f"{cfg.model_id}: tokenizer has no EOS token; last-token pooling needs one")
        # Recent Qwen3-Embedding revisions append EOS in the tokenizer; older ones did not,
        # and the model card then appended it by hand. Do whichever the tokenizer needs.
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        self.appends_eos = bool(probe) and probe[-1] == self.eos_id
        self.meta = EncoderMeta(
            name=cfg.name,
            model_id=cfg.model_id,
            revision=revision,
            backend="hf",
            dim=cfg.dimension or hidden,
            max_tokens=cfg.max_length,
            pooling="last_token",
            dtype=cfg.dtype,
            device=str(self.device),
            normalize=cfg.normalize,
            extra={
                "attn_implementation": self.model.config._attn_implementation,
                "padding_side": cfg.padding_side,
                "instruction_format": cfg.instruction_format,
            },
        )

    # -- LocalEncoder contract ---------------------------------------------------------
    def prepare(self, texts: list[str], *, role: Role, instruction: str | None = None) -> list[str]:
        """The exact strings the model sees (the cache keys on these)."""
        return format_inputs(
            texts,
            role=role,
            instruction=instruction,
            instruction_format=self.cfg.instruction_format,
            default_instruction=self.cfg.default_instruction,
        )

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Untruncated token counts, EOS included."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        extra = 0 if self.appends_eos else 1
        return [len(x) + extra for x in ids]

    def tokenize(self, batch: list[str]) -> dict[str, torch.Tensor]:
        """Padded tensors; over-long inputs lose their tail, never the final EOS."""
        limit = self.cfg.max_length
        if self.appends_eos:
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        else:
            enc = self.tokenizer(batch, padding=False, truncation=True, max_length=limit - 1)
            enc["input_ids"] = [ids + [self.eos_id] for ids in enc["input_ids"]]
            enc["attention_mask"] = [m + [1] for m in enc["attention_mask"]]
            enc = self.tokenizer.pad(enc, padding=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    @torch.inference_mode()
    def forward(self, batch: list[str]) -> torch.Tensor:
        """Pooled, normalised (and Matryoshka-truncated) float32 vectors on the CPU."""
        enc = {k: v.to(self.device) for k, v in self.tokenize(batch).items()}
        hidden = self.model(**enc).last_hidden_state
        pooled = last_token_pool(hidden, enc["attention_mask"]).float()
        if self.cfg.dimension is not None:
            pooled = pooled[:, : self.cfg.dimension]
        if self.cfg.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled.cpu()

    def encode_batch(self, batch: list[str], lengths: list[int], role: Role) -> np.ndarray:
        """One forward pass over prepared texts, reported to the hooks."""
        return self.timed_forward(lambda: self.forward(batch).numpy(), lengths, role, self.device)

    def close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def build(cfg: Config, hooks: Hooks = NO_HOOKS) -> HFEncoder:
    return HFEncoder(cfg, hooks)
