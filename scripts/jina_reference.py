"""Reference vectors of the tiny JinaBERT-v2 checkpoint, computed with Jina's own modelling code.

Runs in a throw-away environment where Jina's remote code works (transformers 4.x), never in
evalkit's own: see tests/fixtures/jina_tiny/README.md for the environment, where Jina's code came
from and what was checked. Jina's two files are not part of this repository; pass their folder:

    python scripts/jina_reference.py vectors CODE_DIR WORK_DIR [CODE_DIR2 ...]
    python scripts/jina_reference.py score RESULT_JSON "COMMAND"

CODE_DIR holds configuration_bert.py and modeling_bert.py of jinaai/jina-bert-implementation.
For each code folder and each weight layout (plain / ``bert.``-prefixed, safetensors / .bin) the
checkpoint is copied into WORK_DIR with ``auto_map`` pointed at the local files, loaded with
``AutoModel.from_pretrained(..., trust_remote_code=True)`` and encoded three ways: each text
alone, the padded batches of ``tests.fixtures.jina_tiny.BATCHES``, and Jina's own
``model.encode`` (which sorts and pads batches itself); plus ``SentenceTransformer(...).encode``.
The first code folder's plain-layout vectors are written to tests/fixtures/jina_tiny/reference.json
with the largest difference between every other way of computing them.

``score`` adds the main score of an evalkit result file (a task run on the same checkpoint
through Jina's remote code, in the same environment; COMMAND is the command that ran it) to
reference.json under "tasks".
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.jina_tiny import BATCHES, FOLDER, REFERENCE, relayout, texts  # noqa: E402

LAYOUTS = {"plain": {}, "bert_prefix": {"bert_prefix": True}, "bin": {"fmt": "bin"},
           "bert_prefix_bin": {"bert_prefix": True, "fmt": "bin"}}


def local_checkpoint(code: Path, work: Path, layout: str) -> Path:
    """The committed checkpoint in ``layout``, with Jina's code beside it and auto_map local."""
    dst = work / f"{code.name}-{layout}"
    if dst.exists():
        shutil.rmtree(dst)
    relayout(FOLDER, dst, **LAYOUTS[layout])
    for name in ("configuration_bert.py", "modeling_bert.py"):
        shutil.copyfile(code / name, dst / name)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["auto_map"] = {k: v.split("--", 1)[1] for k, v in cfg["auto_map"].items()}
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


@torch.inference_mode()
def encode_all(folder: Path) -> dict[str, np.ndarray | list]:
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    all_texts = texts()

    def pooled(batch: list[str]) -> np.ndarray:
        enc = tok(batch, padding=True, truncation=True, max_length=8192, return_tensors="pt")
        out = model(**enc)[0]
        return model.mean_pooling(out.float(), enc["attention_mask"]).numpy()

    info = {"class": type(model).__name__, "attn_implementation": getattr(model.config, "attn_implementation", None),
            "alibi_buffer": [list(b.shape) for n, b in model.named_buffers() if n.endswith("alibi")]}
    return {"singles": np.concatenate([pooled([t]) for t in all_texts]),
            "batches": [pooled([all_texts[i] for i in idx]) for idx in BATCHES],
            "jina_encode": np.asarray(model.encode(all_texts, batch_size=4)), "info": info}


def st_encode(folder: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    return model.encode(texts(), batch_size=4, convert_to_numpy=True)


def max_diff(a: dict, b: dict) -> float:
    """Largest difference between two runs, each way of encoding compared with the same way."""
    diffs = [np.abs(a["singles"] - b["singles"]).max(), np.abs(a["jina_encode"] - b["jina_encode"]).max()]
    diffs += [np.abs(x - y).max() for x, y in zip(a["batches"], b["batches"])]
    return float(max(diffs))


def main(code_dirs: list[Path], work: Path) -> None:
    import sentence_transformers
    import transformers

    torch.manual_seed(0)
    runs = {}
    for code in code_dirs:
        for layout in LAYOUTS:
            runs[(code.name, layout)] = encode_all(local_checkpoint(code, work, layout))
            print(code.name, layout, runs[(code.name, layout)]["info"], flush=True)
    first = runs[(code_dirs[0].name, "plain")]
    st = st_encode(local_checkpoint(code_dirs[0], work, "plain"))
    all_texts = texts()
    # a text's vector alone vs inside each padded batch (Jina's code itself)
    padding = max(float(np.abs(first["batches"][k] - first["singles"][idx]).max()) for k, idx in enumerate(BATCHES))
    checks = {f"{c}/{layout} vs {code_dirs[0].name}/plain": max_diff(r, first) for (c, layout), r in runs.items()}
    checks["sentence_transformers (batches of 4) vs singles"] = float(np.abs(st - first["singles"]).max())
    checks["jina model.encode (batches of 4) vs singles"] = float(np.abs(first["jina_encode"] - first["singles"]).max())
    checks["padded batches vs singles"] = padding
    old = json.loads(REFERENCE.read_text(encoding="utf-8")) if REFERENCE.exists() else {}
    ref = {
        "about": "tests/fixtures/jina_tiny/README.md",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "sentence_transformers": sentence_transformers.__version__},
        "jina_code_info": first["info"],
        "max_abs_differences": checks,
        "texts": all_texts,
        "singles": first["singles"].astype(float).tolist(),
        "batches": [{"indices": idx, "vectors": first["batches"][k].astype(float).tolist()}
                    for k, idx in enumerate(BATCHES)],
        "tasks": old.get("tasks", {}),
    }
    REFERENCE.write_text(json.dumps(ref, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(checks, indent=1))
    tokenizer = transformers.AutoTokenizer.from_pretrained(FOLDER)
    print("text lengths (tokens):", [len(x) for x in tokenizer(all_texts)["input_ids"]])


def add_score(result_file: Path, command: str) -> None:
    import transformers

    result = json.loads(result_file.read_text(encoding="utf-8"))
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    task = result_file.stem
    ref.setdefault("tasks", {})[task] = {"main_score": result["evalkit"]["main_score"], "command": command,
                                         "transformers": transformers.__version__}
    REFERENCE.write_text(json.dumps(ref, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(task, ref["tasks"][task])


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "score":
        add_score(Path(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "vectors":
        main([Path(p) for p in sys.argv[2:3] + sys.argv[4:]], Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
