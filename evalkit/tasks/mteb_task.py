"""A task scored by mteb's own evaluators: an mteb task object with its data already loaded
(built-in specs, local mirrors of MTEB tasks, or the Hub), evaluated through
``mteb.evaluate``; per-item scores come from mteb's prediction files (``mteb_items``)."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from evalkit.results.items import TaskItems
from evalkit.tasks.base import EvalContext, Task, TaskOutput

log = logging.getLogger("evalkit.tasks")


class MtebTask(Task):
    def __init__(self, mteb_task, *, fingerprint: str, source: str, instruction: str | None = None,
                 skipped_rows: dict[str, int] | None = None, limit: int | None = None,
                 subsets: list[str] | None = None, extra: dict[str, Any] | None = None,
                 positions: dict | None = None):
        self.mteb_task = mteb_task
        meta = mteb_task.metadata
        self.name, self.type, self.main_metric = meta.name, meta.type, meta.main_score
        # evaluated subsets only (a filtered task reports its own languages)
        self.languages = list(getattr(mteb_task, "languages", None) or meta.languages)
        self.fingerprint, self.source, self.instruction = fingerprint, source, instruction
        self.skipped_rows = dict(skipped_rows or {})
        self.limit, self.subsets = limit, subsets
        self.extra = dict(extra or {})  # builder facts for the result (e.g. subset fingerprints)
        self.positions = dict(positions or {})  # evidence spans per subset and query (evalkit.tasks.by_depth)

    def expected_subsets(self) -> dict[str, list[str]]:
        return {split: list(self.mteb_task.hf_subsets) for split in self.mteb_task.eval_splits}

    def evaluate(self, encoder, ctx: EvalContext) -> TaskOutput:
        import mteb

        from evalkit.encoders.mteb_adapter import MtebEncoderAdapter

        adapter = MtebEncoderAdapter(encoder, {self.name: self.instruction})
        model = adapter
        if self.type == "Retrieval" and ctx.stack.search is not None:  # e.g. documents score as their best window
            model = ctx.stack.search(adapter, self.instruction)
        rerank = getattr(ctx.stack, "rerank", None)
        if rerank is not None and self.type != "Retrieval":
            raise ValueError(f"a reranker reorders retrieved documents: {self.name} is a {self.type} task; "
                             "run it without rerank=")
        pred_dir = ctx.work_dir / "predictions"
        result = mteb.evaluate(model, self.mteb_task, cache=None, prediction_folder=pred_dir,
                               show_progress_bar=False, raise_error=True)
        task_result, extra = result.task_results[0], dict(self.extra)
        if rerank is not None:  # the first stage's ranking, reordered: what this variant is scored on
            extra["rerank"] = {**rerank.describe(), "first_stage": first_stage_summary(task_result)}
            task_result, pred_dir = self._reranked(rerank, pred_dir, ctx.work_dir / "reranked")
        items = self._items(pred_dir / self.mteb_task.prediction_file_name)
        out = TaskOutput(task_result=task_result_json(task_result), main_score=float(task_result.get_score()),
                         items=items, extra=extra)
        if self.type == "Retrieval":
            self._length_figures(out, encoder)
            if self.positions and out.items is not None:
                out.extra["by_depth"] = self._depth_figures(out, encoder, chunked=_chunked(ctx.stack))
        return out

    def _depth_figures(self, out: TaskOutput, encoder, *, chunked: bool) -> dict:
        """Quality by evidence depth in the model's own tokens (evalkit.tasks.by_depth)."""
        from evalkit.encoders.base import Role
        from evalkit.tasks import by_depth as bd

        view = encoder.tokenizer_view()  # the limit from the view too: all vectors cached, the model never loads
        max_tokens = getattr(view, "max_tokens", None) or encoder.meta.max_tokens
        if view is not None:
            def count(texts):
                return [n - view.n_special for n in view.lengths(view.prepare(texts, role=Role.DOCUMENT))]
            special, tokenizer = view.n_special, "the model's own"
        else:  # an endpoint: Qwen3's vocabulary stands in, as for document lengths
            count, special, tokenizer = reference_counter(), 2, "reference (Qwen3's tokenizer.json)"
        window = max_tokens - special if max_tokens else None
        figures = bd.by_depth(out.items, bd.evidence_depths(self.mteb_task, self.positions, count), window,
                              chunked=chunked)
        return figures | {"tokenizer": tokenizer, "long_docs": "chunk" if chunked else "truncate"}

    def _reranked(self, rerank, first_stage: Path, pred_dir: Path):
        """mteb's reranking path: the task's top_ranked from the first stage's predictions, scored
        with the reranker's cross-encoder. The task object itself keeps its first-stage form."""
        import mteb

        task = copy.copy(self.mteb_task)  # convert_to_reranking rewrites its dataset dicts: give it copies
        task.dataset = {s: {sp: dict(d) for sp, d in splits.items()} for s, splits in self.mteb_task.dataset.items()}
        task.convert_to_reranking(first_stage, top_k=rerank.top_k)
        result = mteb.evaluate(rerank.for_task(self.name, self.instruction), task, cache=None,
                               prediction_folder=pred_dir, show_progress_bar=False, raise_error=True)
        return result.task_results[0], pred_dir

    def _length_figures(self, out: TaskOutput, encoder) -> None:
        """Documents' lengths in the model's own tokens, quality by length, effective length."""
        from evalkit.encoders.base import Role
        from evalkit.tasks import by_length as bl

        view = encoder.tokenizer_view()
        if view is not None:
            count, tokenizer = (lambda texts: view.lengths(view.prepare(texts, role=Role.DOCUMENT))), "the model's own"
        else:  # an endpoint: no tokenizer here; Qwen3's vocabulary stands in, and says so
            count, tokenizer = reference_counter(), "reference (Qwen3's tokenizer.json; the model's own is on the server)"
        lengths = bl.document_lengths(self.mteb_task, count)
        max_tokens = encoder.meta.max_tokens
        out.extra["doc_lengths"] = {"tokenizer": tokenizer, "subsets": bl.length_summary(lengths, max_tokens)}
        if out.items is not None:
            qrels = {s: self.mteb_task.dataset[s][split]["relevant_docs"]
                     for s in self.mteb_task.hf_subsets for split in self.mteb_task.eval_splits}
            out.extra["by_length"] = bl.by_length(out.items, qrels, lengths)
        scores = [(e.get("hf_subset"), e.get("main_score")) for entries in out.task_result["scores"].values() for e in entries]
        curve = bl.length_curve(scores)
        if curve is not None:
            out.extra["effective_length"] = {
                "tokens": bl.effective_length(curve), "curve": {str(k): v for k, v in sorted(curve.items())},
                "rule": f"longest tested length scoring >= {bl.EFFECTIVE_SHARE:.0%} of the score at {min(curve)} tokens",
            }

    def _items(self, path) -> TaskItems | None:
        from evalkit.tasks.mteb_items import subset_items

        try:
            predictions = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: no prediction file from mteb (%s); no per-item scores", self.name, exc)
            return None
        subsets = []
        for split in self.mteb_task.eval_splits:
            for subset in self.mteb_task.hf_subsets:
                pred = (predictions.get(subset) or {}).get(split)
                items = subset_items(self.mteb_task, subset, split, pred, self.main_metric) if pred is not None else None
                if items is None:
                    log.info("%s: no per-item scores for %s/%s (type %s, metric %s)",
                             self.name, subset, split, self.type, self.main_metric)
                    return None
                subsets.append(items)
        return TaskItems(task=self.name, main_metric=self.main_metric, subsets=subsets) if subsets else None


def _chunked(stack) -> bool:
    """Whether this run's documents are read in windows (encode.long_docs=chunk)."""
    from evalkit.encoders.layers.chunking import ChunkingEncoder

    return any(isinstance(layer, ChunkingEncoder) for layer in getattr(stack, "layers", None) or [])


def first_stage_summary(task_result) -> dict[str, Any]:
    """The first stage's score in a reranked result: its main score, overall and per subset."""
    subsets = {f"{split}/{e.get('hf_subset')}": round(float(e["main_score"]), 6)
               for split, entries in task_result.scores.items() for e in entries}
    return {"main_score": round(float(task_result.get_score()), 6), "subsets": subsets}


def reference_counter():
    """Token counts in Qwen3's vocabulary (the reference tokenizer of the long-context tasks)."""
    from evalkit.data.stats import token_counts, tokenizers_available

    path = tokenizers_available().get("qwen")
    if path is None:
        return lambda texts: [len(t) for t in texts]  # pragma: no cover - a test dependency ships it
    return lambda texts: [int(n) for n in token_counts(list(texts), path)]


def task_result_json(task_result) -> dict[str, Any]:
    """What mteb's ``TaskResult.to_disk`` writes: its JSON, floats rounded to 6 digits."""
    obj = task_result.model_dump(mode="json")
    obj["date"] = task_result.date.timestamp() if getattr(task_result, "date", None) else None
    obj["scores"] = round_floats(obj["scores"], 6)
    return obj


def round_floats(obj: Any, digits: int) -> Any:
    """mteb's rounding rule: floats in dicts, and floats or dicts directly inside lists."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_floats(v, digits) if isinstance(v, dict | float) else v for v in obj]
    return obj
