"""JinaBERT v2 (jina-embeddings-v2-*) in plain torch: no remote code, no transformers model class.

The architecture, as the checkpoints' ``config.json`` declares it and Jina's modelling code
(``jinaai/jina-bert-implementation``) computes it:

* embeddings: word + token type (always type 0), LayerNorm — no position embeddings;
* attention: BERT self-attention plus a symmetric ALiBi bias ``-slope_h * |i - j|`` with the
  ALiBi paper's head slopes, built for the batch's own length (never a 8,192 x 8,192 table),
  through ``scaled_dot_product_attention`` with the padding mask; then dense, residual, LayerNorm;
* feed-forward: a gated linear unit (``feed_forward_type``: ``geglu`` = exact GELU gate,
  ``reglu`` = ReLU gate): ``wo(act(x W_g) * (x W_u))``, residual, LayerNorm (post-LN);
* the sentence vector: mean of the last hidden states over the real tokens.

Module names equal the checkpoints' key names, so a state dict loads as it is; ``load_state``
checks every key and shape first and names what is wrong (see ``evalkit.encoders.backends.jina``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evalkit.errors import ConfigError

GATES = {"geglu": nn.GELU, "reglu": nn.ReLU}
# Elements of one attention-bias block (batch x heads x query rows x keys): queries are processed
# in slices so that the bias of a long batch never needs more (128 Mi elements: 512 MB in float32,
# 256 MB in bfloat16; one 3,000-token text with 12 heads fits one block).
BIAS_BLOCK_ELEMENTS = 1 << 27


@dataclass(frozen=True)
class JinaBertShape:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_norm_eps: float
    type_vocab_size: int
    feed_forward_type: str
    max_position_embeddings: int
    emb_pooler: str | None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_config(cls, path: Path) -> "JinaBertShape":
        """Read a Jina v2 ``config.json``; anything this implementation does not compute is an error."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the model config ({exc})") from None
        if raw.get("position_embedding_type") != "alibi":
            raise ConfigError(f"{path}: position_embedding_type is {raw.get('position_embedding_type')!r}; "
                              "the native Jina backend computes JinaBERT v2 with ALiBi ('alibi') only")
        if raw.get("feed_forward_type") not in GATES:
            raise ConfigError(f"{path}: feed_forward_type {raw.get('feed_forward_type')!r} is not supported; "
                              f"valid: {', '.join(GATES)}")
        try:
            shape = cls(**{f: raw[f] for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                               "intermediate_size", "feed_forward_type")},
                        layer_norm_eps=raw.get("layer_norm_eps", 1e-12), type_vocab_size=raw.get("type_vocab_size", 2),
                        max_position_embeddings=raw.get("max_position_embeddings", 8192),
                        emb_pooler=raw.get("emb_pooler"))
        except KeyError as exc:
            raise ConfigError(f"{path}: field {exc.args[0]!r} missing") from None
        if shape.hidden_size % shape.num_attention_heads:
            raise ConfigError(f"{path}: hidden_size {shape.hidden_size} is not a multiple of "
                              f"num_attention_heads {shape.num_attention_heads}")
        return shape


def alibi_slopes(n_heads: int) -> list[float]:
    """The ALiBi paper's head slopes: a geometric sequence starting at 2^(-8/n) for n a power of
    two; otherwise the slopes of the nearest lower power of two, then every other slope of the
    next power of two (Press et al., 2022, and the reference code they published)."""
    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    lower = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(lower) + alibi_slopes(2 * lower)[0::2][: n_heads - lower]


def alibi_bias(slopes: torch.Tensor, rows: range, n_keys: int, dtype: torch.dtype) -> torch.Tensor:
    """Symmetric ALiBi bias ``-slope_h * |i - j|`` for the query positions ``rows`` against keys
    ``0 .. n_keys-1``: shape (1, heads, len(rows), n_keys) — the batch's own length, nothing more.
    Computed in float32 and rounded once to ``dtype`` (in bfloat16 the distances themselves would
    round above 256), as Jina's float32 table cast to the model's dtype."""
    pos = torch.arange(n_keys, device=slopes.device, dtype=torch.float32)
    distance = (pos[rows.start : rows.stop, None] - pos[None, :]).abs_()
    return (distance * -slopes.to(torch.float32)[:, None, None]).unsqueeze(0).to(dtype)


class BatchBias:
    """The attention bias of one batch — ALiBi plus -inf on padded keys — in blocks of query rows
    of at most ``BIAS_BLOCK_ELEMENTS`` elements. A batch that fits one block builds it once for
    all layers; a longer one builds each block when a layer needs it (memory stays bounded)."""

    def __init__(self, slopes: torch.Tensor, attention_mask: torch.Tensor, dtype: torch.dtype):
        self.slopes, self.dtype = slopes, dtype
        b, self.n = attention_mask.shape
        self.pad = None  # every query row keeps its real keys, so a -inf row never happens
        if not bool(attention_mask.all()):
            zeros = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
            self.pad = zeros.masked_fill(attention_mask == 0, float("-inf"))[:, None, None, :]
        per_row = (b if self.pad is not None else 1) * len(slopes) * self.n
        step = max(1, BIAS_BLOCK_ELEMENTS // per_row)
        self.blocks = [range(s, min(self.n, s + step)) for s in range(0, self.n, step)]
        self._single = self.build(self.blocks[0]) if len(self.blocks) == 1 else None

    def build(self, rows: range) -> torch.Tensor:
        bias = alibi_bias(self.slopes, rows, self.n, self.dtype)
        return bias if self.pad is None else bias + self.pad

    def __iter__(self):
        for rows in self.blocks:
            yield rows, self._single if self._single is not None else self.build(rows)


class _Module(nn.Module):
    """A plain container: only here so that parameter names equal the checkpoint's keys."""


def _linear_norm(hidden: int, eps: float) -> _Module:
    out = _Module()
    out.dense = nn.Linear(hidden, hidden)
    out.LayerNorm = nn.LayerNorm(hidden, eps=eps)
    return out


class JinaLayer(nn.Module):
    def __init__(self, s: JinaBertShape):
        super().__init__()
        self.heads, self.head_dim = s.num_attention_heads, s.head_dim
        self.attention = _Module()
        self.attention.self = _Module()  # "attention.self.query" etc., as the checkpoints name them
        for name in ("query", "key", "value"):
            setattr(self.attention.self, name, nn.Linear(s.hidden_size, s.hidden_size))
        self.attention.output = _linear_norm(s.hidden_size, s.layer_norm_eps)
        self.mlp = _Module()
        self.mlp.gated_layers = nn.Linear(s.hidden_size, 2 * s.intermediate_size, bias=False)
        self.mlp.wo = nn.Linear(s.intermediate_size, s.hidden_size)
        self.mlp.layernorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.gate = GATES[s.feed_forward_type]()
        self.intermediate = s.intermediate_size

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def attend(self, x: torch.Tensor, bias: BatchBias) -> torch.Tensor:
        """Self-attention with ALiBi, one block of query rows at a time."""
        proj = self.attention.self
        q, k, v = (self._heads(layer(x)) for layer in (proj.query, proj.key, proj.value))
        b, h, n, _ = q.shape
        out = [F.scaled_dot_product_attention(q[:, :, rows.start : rows.stop], k, v, attn_mask=block)
               for rows, block in bias]
        context = torch.cat(out, dim=2).transpose(1, 2).reshape(b, n, h * self.head_dim)
        return self.attention.output.LayerNorm(self.attention.output.dense(context) + x)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.mlp.gated_layers(x)
        gated, plain = both[..., : self.intermediate], both[..., self.intermediate :]
        return self.mlp.layernorm(self.mlp.wo(self.gate(gated) * plain) + x)

    def forward(self, x: torch.Tensor, bias: BatchBias) -> torch.Tensor:
        return self.feed_forward(self.attend(x, bias))


class JinaBert(nn.Module):
    """The encoder; ``forward`` returns the last hidden states (batch, tokens, hidden)."""

    def __init__(self, shape: JinaBertShape):
        super().__init__()
        self.shape = shape
        self.embeddings = _Module()
        self.embeddings.word_embeddings = nn.Embedding(shape.vocab_size, shape.hidden_size)
        self.embeddings.token_type_embeddings = nn.Embedding(shape.type_vocab_size, shape.hidden_size)
        self.embeddings.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)
        self.encoder = _Module()
        self.encoder.layer = nn.ModuleList(JinaLayer(shape) for _ in range(shape.num_hidden_layers))
        # the slopes are the model's only non-weight tensor: 1 value per head, computed here, not loaded
        self._slopes = alibi_slopes(shape.num_attention_heads)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings
        # token type 0 for every token (single-segment inputs), as the tokenizer would give
        x = emb.word_embeddings(input_ids) + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        bias = BatchBias(torch.tensor(self._slopes, device=x.device), attention_mask, x.dtype)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real tokens' hidden states, accumulated in float32."""
    mask = attention_mask.unsqueeze(-1).to(torch.float32)
    return (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
