"""Section 3: padding efficiency (real tokens / rows x longest row) per task.

Measured: the profiles of section 1's real evalkit runs (zh_longdoc, STSBenchmark, Banking77),
i.e. the BatchReports of the batches that really ran. Planned: the real tokenizer over every
text of the task, grouped the way mteb calls the encoder (one call per subset and column,
distinct texts per call, windows of ``evalkit.encoders.local.WINDOW``), packed by the same
``plan_token_batches`` with the default ``encode.min_padding_efficiency``. Two tokenizers:
MiniLM's (256 tokens, batch 32: what section 1 ran) and Qwen3's real BPE at 8,192 tokens,
batch 8 (``model=qwen3_0_6b``'s defaults, instruction formatting included). The baseline is
a fixed count per batch after sorting by length, what sentence-transformers (and so
mteb) does within one encode call.
"""

from __future__ import annotations

from bench.common import Row, load_task, task_texts

TASKS = ["zh_longdoc", "STSBenchmark", "Banking77Classification", "Tatoeba", "mixed_lang"]


def plan_efficiency(view, calls, budget: int, batch: int, limit: int, min_eff: float) -> dict:
    """Padding of evalkit's plan and of fixed sorted batches over encode calls [(texts, role, instr)]."""
    from evalkit.encoders.batching import padding_tokens, plan_fixed_batches, plan_token_batches
    from evalkit.encoders.local import WINDOW

    real = padded = fixed_padded = batches = fixed_batches = n = 0
    for texts, role, instruction in calls:
        texts = list(dict.fromkeys(texts))  # DedupEncoder: each distinct text of a call once
        lengths = view.lengths(view.prepare(texts, role=role, instruction=instruction))
        n += len(lengths)
        for s in range(0, len(lengths), WINDOW):
            win = lengths[s : s + WINDOW]
            plan = plan_token_batches(win, budget, max_tokens=limit, min_efficiency=min_eff)
            r, p = padding_tokens(win, plan, limit)
            real, padded, batches = real + r, padded + p, batches + len(plan)
        fixed = plan_fixed_batches(lengths, batch, sort=True)  # ST sorts the whole call
        fixed_padded += padding_tokens(lengths, fixed, limit)[1]
        fixed_batches += len(fixed)
    return {"efficiency": real / padded, "batches": batches, "texts": n, "fixed_efficiency": real / fixed_padded,
            "fixed_batches": fixed_batches}


def encode_calls(task) -> list[tuple[list[str], object, str | None]]:
    from evalkit.encoders.base import Role

    calls = []
    for key, texts in task_texts(task).items():
        if key.endswith("/queries"):
            calls.append((texts, Role.QUERY, task.instruction))
        elif key.endswith("/corpus"):
            calls.append((texts, Role.DOCUMENT, None))
        else:  # STS, classification, bitext: symmetric, the instruction on both sides (Qwen3)
            calls.append((texts, Role.SYMMETRIC, task.instruction))
    return calls


def qwen3_view(max_length: int = 8192):
    from evalkit.encoders.instructions import format_inputs
    from evalkit.encoders.tokens import TokenizerView

    from bench.shape_twin import qwen3_tokenizer

    def prepare(texts, *, role, instruction=None):
        return format_inputs(texts, role=role, instruction=instruction, instruction_format="qwen3")

    return TokenizerView(qwen3_tokenizer(), max_length, prepare)


def bench_padding(data_cache, measured: dict | None = None, qwen3_max: int = 8192, qwen3_batch: int = 8) -> list[Row]:
    """``measured``: section 1's evalkit run ({"tasks": {name: {"padding_efficiency": …}}}), if it ran."""
    from evalkit.encoders.stack import build_backend
    from evalkit.schema import EncodeConfig

    from bench.common import MINILM, minilm_cfg

    min_eff = EncodeConfig().min_padding_efficiency
    minilm = build_backend(minilm_cfg())
    qwen = qwen3_view(qwen3_max)
    measured_tasks = (measured or {}).get("tasks", {})
    rows = []
    for name in TASKS:
        calls = encode_calls(load_task(name, data_cache))
        mini = plan_efficiency(minilm.view, calls, minilm.effective_token_budget(), MINILM["batch_size"],
                               minilm.meta.max_tokens, min_eff)
        q = plan_efficiency(qwen, calls, qwen3_batch * qwen3_max, qwen3_batch, qwen3_max, min_eff)
        got = (measured_tasks.get(name) or {}).get("padding_efficiency")
        value, how = (got, "measured") if got is not None else (mini["efficiency"], "planned")
        met = value >= 0.9 and q["efficiency"] >= 0.9
        note = (f"MiniLM planned {mini['efficiency']:.3f} in {mini['batches']} batches (fixed-32 sorted: "
                f"{mini['fixed_batches']}); Qwen3 tokenizer @{qwen3_max}, batch {qwen3_batch}: planned "
                f"{q['efficiency']:.3f} in {q['batches']} batches (fixed-{qwen3_batch} sorted {q['fixed_efficiency']:.3f}, "
                f"{q['fixed_batches']} batches)")
        rows.append(Row("3 padding", f"{name}: {mini['texts']} distinct texts in {len(calls)} encode calls",
                        f"{value:.3f} {how} (MiniLM); Qwen3 {q['efficiency']:.3f} planned",
                        f"{mini['fixed_efficiency']:.3f} (fixed 32, sorted)", value / mini["fixed_efficiency"],
                        ">= 0.9", met, note, {"minilm": mini, "qwen3": q, "measured": got}))
    minilm.close()
    return rows
