"""What every backend's config shares (``model:`` in the Hydra config). Torch-free.

Each backend module (``evalkit.encoders.backends.<name>``) defines its own ``Config``, a
subclass of :class:`ModelBase` whose ``backend`` field is a one-value ``Literal``; the
registry (``evalkit.encoders.backends``) and the job schema (``evalkit.schema.models``)
derive from those classes. Fields marked ``speed(...)`` never change a vector
(``evalkit.fields``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from evalkit.fields import Strict, speed

# "auto": the checkpoint's dtype on CUDA (bfloat16, or float16 where the GPU lacks bf16),
# float32 on CPU. Resolved before the config hash is taken, so results, cache keys and hashes
# record the dtype that really ran (evalkit.encoders.torch_utils.resolve_model_config).
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
InstructionFormat = Literal["qwen3", "none"]

# The Qwen3-Embedding model card's example instruction; used for queries of tasks without one.
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_MAX_CONTEXT = 32768  # Qwen3-Embedding's trained context


class Probe(Strict):
    """A known-answer check of the model (``model.probe``; run by ``evalkit.encoders.probe``):
    texts whose similarities the model's reference gives, and how close ours must come."""

    source: str = Field(min_length=1)  # where the scores come from: a model card's example, a reference run's command
    queries: list[str] = Field(min_length=1)  # role query; without documents: symmetric texts, each against each
    documents: list[str] | None = Field(None, min_length=1)  # role document: scores are queries x documents
    instruction: str | None = None  # the queries' task instruction (Qwen3: the card's); None: the model's default
    scores: list[list[float]]  # the reference's cosine similarities: one row per query
    tolerance: float = Field(0.01, gt=0, lt=1)  # the largest |ours - reference| allowed per score
    normalized: bool = False  # the reference's vectors have unit length: ours must too (a server that stops normalising)
    dimension: int | None = Field(None, ge=1)  # the reference's vector size: another one (Matryoshka) skips the probe

    @model_validator(mode="after")
    def _scores_shape(self) -> Probe:
        columns = len(self.documents or self.queries)
        shape = [len(row) for row in self.scores]
        if shape != [columns] * len(self.queries):
            raise ValueError(f"scores must be {len(self.queries)} rows (queries) of {columns} values "
                             f"({'documents' if self.documents else 'queries'}); got rows of {shape}")
        return self


class ModelBase(Strict):
    name: str  # results are filed under this name (plus the variant, see evalkit.variants)
    revision: str | None = None  # hub commit of the weights (or of what a server serves)
    # The known-answer probe, checked before the first task; "off" skips it, null: this config has none.
    probe: Probe | Literal["off"] | None = speed(None)

    @field_validator("probe", mode="before")
    @classmethod
    def _probe_off(cls, value):
        if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "false")):
            return "off"  # YAML reads a bare `off` as false
        if value is True:
            raise ValueError("probe: true has nothing to check against: give its texts and scores (docs/models.md) "
                             "or off (an endpoint's start-up request is model.ping)")
        return value

    @property
    def model_ref(self) -> str:
        """What names the weights: a hub id, a local folder, or a served model's name."""
        raise NotImplementedError
