"""The parts of ``bench/`` whose numbers the speed table relies on: the Qwen3 shape twin's
architecture and tokenizer, and the padding arithmetic of section 3 (checked against a
direct computation)."""

from __future__ import annotations

import random

import pytest


def test_shape_twin_has_qwen3_embedding_0_6b_parameter_count():
    from bench.shape_twin import QWEN3_EMBEDDING_0_6B as a
    from bench.shape_twin import mteb_parameters, parameter_count, shape_config

    # independent count from the architecture: embeddings, 28 x (attention + q/k norms + MLP +
    # two RMSNorms), final norm; no biases (attention_bias false), no LM head in Qwen3Model
    h, d, heads, kv = a["hidden_size"], a["head_dim"], a["num_attention_heads"], a["num_key_value_heads"]
    attention = h * heads * d + 2 * h * kv * d + heads * d * h + 2 * d
    mlp = 3 * h * a["intermediate_size"]
    expected = a["vocab_size"] * h + a["num_hidden_layers"] * (attention + mlp + 2 * h) + h
    assert parameter_count(shape_config()) == expected == 595_776_512
    registry = mteb_parameters()
    assert registry in (None, expected)  # mteb's ModelMeta for Qwen/Qwen3-Embedding-0.6B


def test_shape_twin_tokenizer_appends_eos_and_pads_left():
    from bench.shape_twin import EOS, qwen3_tokenizer

    tok = qwen3_tokenizer()
    assert len(tok) == 151_669
    eos = tok.convert_tokens_to_ids(EOS)
    batch = tok(["a", "第一条 为了规范 the code"], padding=True)
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
        real = [i for i, m in zip(ids, mask) if m]
        assert real[-1] == eos and ids[-1] == eos  # last position holds EOS: last-token pooling
    short_ids, short_mask = batch["input_ids"][0], batch["attention_mask"][0]
    assert short_mask[0] == 0 and short_ids[0] == tok.pad_token_id == eos  # padded on the left
    assert tok.decode(tok("你好，世界")["input_ids"], skip_special_tokens=True) == "你好，世界"


class _LengthView:
    """A TokenizerView stand-in whose 'tokens' are characters (lengths known exactly)."""

    max_tokens = None

    def prepare(self, texts, *, role, instruction=None):
        return [(instruction or "") + t for t in texts]

    def lengths(self, texts):
        return [len(t) + 2 for t in texts]


def test_plan_efficiency_matches_direct_computation(monkeypatch):
    import evalkit.encoders.local as local
    from bench.padding import plan_efficiency
    from evalkit.encoders.batching import plan_token_batches

    monkeypatch.setattr(local, "WINDOW", 50)  # several windows per call
    rng = random.Random(3)
    texts = [("x" * rng.randint(1, 300)) + str(i) for i in range(180)]
    calls = [(texts + texts[:20], "query", "ins:"), (texts[:70], "doc", None)]
    budget, batch, limit = 2048, 8, 128
    got = plan_efficiency(_LengthView(), calls, budget, batch, limit, 0.9)

    real = padded = fixed_padded = n = 0
    for call_texts, _, ins in calls:
        distinct = list(dict.fromkeys(call_texts))
        lens = [min(limit, len((ins or "") + t) + 2) for t in distinct]
        n += len(lens)
        for s in range(0, len(lens), 50):
            win = lens[s : s + 50]
            for b in plan_token_batches(win, budget, max_tokens=limit, min_efficiency=0.9):
                assert len(b) * max(win[i] for i in b) <= budget or len(b) == 1
                real += sum(win[i] for i in b)
                padded += len(b) * max(win[i] for i in b)
        ordered = sorted(lens, reverse=True)
        fixed_padded += sum(len(ordered[i : i + batch]) * ordered[i] for i in range(0, len(ordered), batch))
    assert got["texts"] == n == 180 + 70
    assert got["efficiency"] == pytest.approx(real / padded)
    assert got["fixed_efficiency"] == pytest.approx(real / fixed_padded)
    assert got["efficiency"] >= 0.9  # every planned batch keeps 90 % of its compute real


def test_every_evalkit_name_the_bench_imports_exists():
    """The bench imports inside its section functions (so `--only` stays cheap): read them from
    the source and resolve each, so a renamed module or function breaks this test, not a
    20-minute `make bench` run."""
    import ast
    import importlib
    from pathlib import Path

    missing = []
    for path in sorted((Path(__file__).resolve().parents[1] / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("evalkit", "bench"):
                try:
                    module = importlib.import_module(node.module)
                except ImportError as exc:
                    missing.append(f"{path.name}: {node.module} ({exc})")
                    continue
                missing += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and not _is_submodule(node.module, a.name)]
    assert not missing, missing


def _is_submodule(package: str, name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"{package}.{name}") is not None
