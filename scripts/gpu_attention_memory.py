"""Why does long-context GPU memory grow quadratically? Peak memory of one forward pass of
the tiny Qwen3 (evalkit's hf backend) by length, dtype and key/value-head layout.

    OUT=/tmp/out python scripts/gpu_attention_memory.py     # ~1 minute on one H100

Hypothesis under test: with grouped-query attention (fewer key/value heads than query
heads, as in Qwen3) PyTorch's SDPA has no memory-efficient float32 kernel and falls back to
the math path, which materialises the (length x length) attention matrix; bfloat16/float16
use the flash kernel, whose memory is linear in length. Writes $OUT/gpu_attention_memory.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.encoders.base import Role  # noqa: E402
from evalkit.encoders.stack import build_backend as build_encoder  # noqa: E402
from evalkit.schema import validate_model_config  # noqa: E402
from tests.fixtures.tiny_qwen3 import make_tiny_qwen3  # noqa: E402


def with_kv_heads(folder: Path, kv_heads: int, dest: Path) -> Path:
    """A copy of the tiny model whose attention has kv_heads key/value heads (fresh weights)."""
    from transformers import AutoConfig, AutoTokenizer, Qwen3Model

    config = AutoConfig.from_pretrained(folder)
    config.num_key_value_heads = kv_heads
    torch.manual_seed(0)
    Qwen3Model(config).save_pretrained(dest)
    AutoTokenizer.from_pretrained(folder).save_pretrained(dest)
    return dest


def peak_mb(encoder, n_tokens: int) -> tuple[int, float | str]:
    vocab = len(encoder.tokenizer)
    ids = [100 + i % (vocab - 200) for i in range(n_tokens - 1)]  # stay inside the tiny vocabulary
    text = encoder.tokenizer.decode(ids)
    real = encoder.view.lengths([text])[0]
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    try:
        encoder.encode([text], role=Role.DOCUMENT)
    except torch.OutOfMemoryError:
        return real, "OOM"
    torch.cuda.synchronize()
    return real, round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)


def main() -> int:
    out = Path(os.environ.get("OUT", "."))
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    gqa = make_tiny_qwen3(tmp / "gqa")  # 4 query heads, 2 key/value heads (like Qwen3)
    mha = with_kv_heads(gqa, 4, tmp / "mha")  # 4 and 4: no grouping
    rows = []
    for layout, folder in (("gqa 4q/2kv", gqa), ("mha 4q/4kv", mha)):
        for dtype in ("float32", "bfloat16"):
            for attn in ("sdpa", "eager"):
                cfg = validate_model_config({
                    "name": "tiny", "backend": "hf", "model_id": str(folder), "revision": None,
                    "max_length": 32768, "dtype": dtype, "device": "cuda", "attn_implementation": attn,
                })
                enc = build_encoder(cfg)
                for n in (4096, 16384):
                    real, peak = peak_mb(enc, n)
                    rows.append({"layout": layout, "dtype": dtype, "attn": attn, "tokens": real, "peak_mb": peak})
                    print(rows[-1], flush=True)
                enc.close()
                del enc
                torch.cuda.empty_cache()
    (out / "gpu_attention_memory.json").write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
