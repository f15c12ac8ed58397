"""The known-answer probe: a model proves it is the model its config names before its vectors count.

Silent wrong vectors are the costliest failure of this field, and each of these loads and
encodes without an error: a plain BERT with random weights when remote code is off (mteb
issue 1862), an old Qwen3 revision without the appended EOS, a server that pools or
normalises differently, buffers a newer library re-creates as garbage. ``model.probe``
(:class:`~evalkit.encoders.config.Probe`) holds a few texts, their roles, the cosine
similarities the model's reference gives them (a model card's printed example, else a
reference run, named in ``source``) and a tolerance; checking it takes milliseconds.

When (:class:`ProbeCheck`, wired by ``evalkit.encoders.stack``):

* on the model itself, right after it loads and before it computes a vector the run uses:
  every model that computes a vector in a run has passed the probe in that run;
* before the first task (``EncoderStack.start``): the model is loaded then — unless the
  embedding cache already holds the probe's vectors under this model identity (its key covers
  everything that changes a vector, so one identity's probe never passes for another's). Those
  are checked instead, and a rerun answered from the cache still never loads the model.

The outcome goes into every result (``evalkit.probe``); a failure stops the run with a
:class:`~evalkit.errors.ProbeError` (expected vs got, likely causes). ``model.probe=off`` skips it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np

from evalkit.encoders.base import Role
from evalkit.encoders.config import Probe
from evalkit.errors import ProbeError

log = logging.getLogger("evalkit.encoders")
NORM_TOLERANCE = 1e-3  # |norm - 1| of a vector that is meant to have unit length (float16 rounding included)
# Deliberate reduced-precision variants (deploy_compare) move the probe by more than float32 rounding,
# far less than a wrong model: MiniLM in bfloat16 moved its similarities by 0.0011 but its vector
# lengths by over 1e-3 (bf16 keeps 8 bits); PyTorch's dynamic int8 moved similarities by 0.054, where
# CLS pooling moved them by 0.18-0.61 and re-initialised weights by 0.25 or more (tests/test_probe.py).
# So these variants keep their probe, with these floors (similarity, vector length):
PRECISION_FLOORS = {"bfloat16": (0.01, 1e-2), "torch_dynamic_int8": (0.1, 1e-2)}

LOCAL_CAUSES = ("other weights: model_id / revision (an older or re-initialised checkpoint, a wrong local folder)",
                "remote code not run: a plain architecture with random weights where the model needs its own code",
                "another pooling (CLS instead of mean; last token without the EOS the tokenizer should append)",
                "the instruction or prefix format, or a setting of this config that changes vectors "
                "(max_length, dtype, prefixes)")
SERVER_CAUSES = ("the server serves other weights or another revision than model.model / model.revision",
                 "the server's settings: its pooling, its normalisation, the EOS token its tokenizer appends",
                 "the instruction or prefix format (model.instruction_format, *_prefix, *_extra_body)")


def encode_probe(encoder, probe: Probe) -> tuple[np.ndarray, np.ndarray | None]:
    """(query vectors, document vectors or None: symmetric) as ``encoder`` computes them."""
    if probe.documents is None:
        return encoder.encode(list(probe.queries), role=Role.SYMMETRIC, instruction=probe.instruction), None
    queries = encoder.encode(list(probe.queries), role=Role.QUERY, instruction=probe.instruction)
    return queries, encoder.encode(list(probe.documents), role=Role.DOCUMENT)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _short(text: str, n: int = 28) -> str:
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def for_precision(probe: Probe, model_cfg) -> tuple[Probe, float, str | None]:
    """The probe with the tolerances of this config's precision: (probe, length tolerance, why widened)."""
    settings = [s for s in (getattr(model_cfg, "dtype", None), getattr(model_cfg, "runtime", None))
                if s in PRECISION_FLOORS]
    if not settings:
        return probe, NORM_TOLERANCE, None
    similarity = max(PRECISION_FLOORS[s][0] for s in settings)
    length = max(PRECISION_FLOORS[s][1] for s in settings)
    widened = probe.model_copy(update={"tolerance": max(probe.tolerance, similarity)})
    return widened, length, f"tolerances for {' + '.join(settings)} (evalkit.encoders.probe.PRECISION_FLOORS)"


def verdict(probe: Probe, queries: np.ndarray, documents: np.ndarray | None, *, checked: str,
            norm_tolerance: float = NORM_TOLERANCE) -> dict[str, Any]:
    """The probe's outcome for these vectors: status passed | failed, and what was compared."""
    ours = _unit(queries) @ _unit(queries if documents is None else documents).T
    expected = np.asarray(probe.scores, dtype=np.float64)
    vectors = queries if documents is None else np.concatenate([queries, documents])
    norms = np.linalg.norm(vectors, axis=1)
    outcome: dict[str, Any] = {
        "status": "passed", "checked": checked, "source": probe.source, "tolerance": probe.tolerance,
        "max_difference": None, "scores": None, "expected": probe.scores,
        "norms": [round(float(norms.min()), 4), round(float(norms.max()), 4)]}
    if vectors.shape[1] != (probe.dimension or vectors.shape[1]):
        return outcome | {"status": "skipped", "reason": f"the vectors have {vectors.shape[1]} dimensions, the "
                          f"reference's {probe.dimension} (model.dimension): its scores are not comparable"}
    diff = float(np.abs(ours - expected).max())
    outcome.update(max_difference=round(diff, 6), scores=np.round(ours, 4).tolist())
    bad_norm = probe.normalized and float(np.abs(norms - 1).max()) > norm_tolerance
    if diff > probe.tolerance or bad_norm:
        outcome["status"] = "failed"
    return outcome


def failure_message(name: str, probe: Probe, outcome: dict[str, Any], *, server: bool,
                    norm_tolerance: float = NORM_TOLERANCE) -> str:
    """Expected vs got, score by score, and the likely causes."""
    columns = probe.documents or probe.queries
    lines = [f"model {name!r} failed its known-answer probe (reference: {probe.source}); "
             f"checked on {outcome['checked']}:",
             f"  {'similarity':<64} {'expected':>8} {'got':>8}"]
    for i, q in enumerate(probe.queries):
        for j, d in enumerate(columns):
            if probe.documents is None and j <= i:
                continue  # symmetric: each pair once, no text against itself
            want, got = probe.scores[i][j], outcome["scores"][i][j]
            mark = "  <- off" if abs(want - got) > probe.tolerance else ""
            lines.append(f"  {_short(q) + ' · ' + _short(d):<64} {want:>8.4f} {got:>8.4f}{mark}")
    lines.append(f"  largest difference {outcome['max_difference']:.4f} (tolerance {probe.tolerance})")
    low, high = outcome["norms"]
    causes = list(SERVER_CAUSES if server else LOCAL_CAUSES)
    if probe.normalized and max(abs(low - 1), abs(high - 1)) > norm_tolerance:
        lines.append(f"  vector lengths {low} … {high}, where the reference's are 1: the vectors are not normalised")
        causes.insert(0, "normalisation missing: " + ("the server does not normalise (model.normalize=true "
                      "normalises client-side)" if server else "the pooling/normalisation modules of the checkpoint"))
    lines.append("likely causes:\n" + "\n".join(f"  - {c}" for c in causes))
    lines.append("Stopped before the model's vectors were used. For a deliberate variant whose vectors differ "
                 "from the reference's, run with model.probe=off.")
    return "\n".join(lines)


class ProbeCheck:
    """The probe of one encoder stack: its outcome, and the two moments it is checked.

    ``cache`` (set by the stack) answers ``lookup(texts, role=, instruction=)`` with the cached
    vectors of this model identity or None, and ``store(texts, vectors, role=, instruction=)``;
    ``quiet`` pauses the stack's batch counting while the probe encodes (no task's work)."""

    def __init__(self, model_cfg, quiet: Callable[[], Any] | None = None):
        probe = getattr(model_cfg, "probe", None)
        self.probe: Probe | None = probe if isinstance(probe, Probe) else None
        self.norm_tolerance, self.widened = NORM_TOLERANCE, None
        if self.probe is not None:
            self.probe, self.norm_tolerance, self.widened = for_precision(self.probe, model_cfg)
        self.name = model_cfg.name
        self.server = model_cfg.backend == "openai_compat"
        self.quiet = quiet or nullcontext
        self.cache = None
        if probe == "off":
            self.outcome: dict[str, Any] = {"status": "off", "reason": "model.probe=off"}
        elif self.probe is None:
            self.outcome = {"status": "none", "reason": "this model config has no probe"}
        else:
            self.outcome = {"status": "not_run", "source": self.probe.source,
                            "reason": "the model never computed a vector in this run (cache or shard stores)"}

    @property
    def pending(self) -> bool:
        return self.probe is not None and self.outcome["status"] == "not_run"

    def on_model(self, encoder) -> None:
        """Right after the model loads: the probe on the model itself (raises ProbeError)."""
        if self.probe is None:
            return
        t0 = time.perf_counter()
        with self.quiet():
            queries, documents = encode_probe(encoder, self.probe)
        self._decide(queries, documents, "the loaded model", time.perf_counter() - t0)
        if self.cache is not None:  # a later run of this identity finds them (and need not load the model)
            self.cache.store(list(self.probe.queries), queries, role=_query_role(self.probe),
                             instruction=self.probe.instruction)
            if documents is not None:
                self.cache.store(list(self.probe.documents), documents, role=Role.DOCUMENT, instruction=None)

    def from_cache(self) -> bool:
        """Check the probe's vectors this model identity left in the embedding cache; False: not all there."""
        if self.probe is None or self.cache is None:
            return False
        queries = self.cache.lookup(list(self.probe.queries), role=_query_role(self.probe),
                                    instruction=self.probe.instruction)
        documents = None
        if self.probe.documents is not None and queries is not None:
            documents = self.cache.lookup(list(self.probe.documents), role=Role.DOCUMENT, instruction=None)
            if documents is None:
                return False
        if queries is None:
            return False
        self._decide(queries, documents, "vectors of this model identity in the embedding cache", 0.0)
        return True

    def _decide(self, queries: np.ndarray, documents: np.ndarray | None, checked: str, seconds: float) -> None:
        self.outcome = verdict(self.probe, queries, documents, checked=checked,
                               norm_tolerance=self.norm_tolerance) | {"seconds": round(seconds, 4)}
        if self.widened:
            self.outcome["tolerance_reason"] = self.widened
        if self.outcome["status"] == "skipped":
            log.warning("%s: known-answer probe skipped: %s", self.name, self.outcome["reason"])
        elif self.outcome["status"] == "passed":
            log.info("%s: known-answer probe passed on %s (largest difference %.4f, tolerance %s)", self.name,
                     checked, self.outcome["max_difference"], self.probe.tolerance)
        if self.outcome["status"] == "failed":
            message = failure_message(self.name, self.probe, self.outcome, server=self.server,
                                      norm_tolerance=self.norm_tolerance)
            if "cache" in checked:
                message += ("\nThese vectors came from the embedding cache: an earlier run of this config stored "
                            "them from a wrong model. Delete that cache (encode.cache_path / paths.cache_dir) or "
                            "run with encode.cache=off.")
            raise ProbeError(message)


def _query_role(probe: Probe) -> Role:
    return Role.SYMMETRIC if probe.documents is None else Role.QUERY
