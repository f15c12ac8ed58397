"""What every backend's config shares (``model:`` in the Hydra config). Torch-free.

Each backend module (``evalkit.encoders.backends.<name>``) defines its own ``Config``, a
subclass of :class:`ModelBase` whose ``backend`` field is a one-value ``Literal``; the
registry (``evalkit.encoders.backends``) and the job schema (``evalkit.schema.models``)
derive from those classes. Fields marked ``speed(...)`` never change a vector
(``evalkit.fields``).
"""

from __future__ import annotations

from typing import Literal

from evalkit.fields import Strict

# "auto": the checkpoint's dtype on CUDA (bfloat16, or float16 where the GPU lacks bf16),
# float32 on CPU. Resolved before the config hash is taken, so results, cache keys and hashes
# record the dtype that really ran (evalkit.encoders.torch_utils.resolve_model_config).
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
InstructionFormat = Literal["qwen3", "none"]

# The Qwen3-Embedding model card's example instruction; used for queries of tasks without one.
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_MAX_CONTEXT = 32768  # Qwen3-Embedding's trained context


class ModelBase(Strict):
    name: str  # results are filed under this name (plus the variant, see evalkit.variants)
    revision: str | None = None  # hub commit of the weights (or of what a server serves)

    @property
    def model_ref(self) -> str:
        """What names the weights: a hub id, a local folder, or a served model's name."""
        raise NotImplementedError
