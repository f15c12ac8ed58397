"""Results: typed records (``records``), per-item scores (``items``), the store that reads
and writes them (``store``), and atomic, secret-free files (``files``)."""

from evalkit.results.files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json, redact
from evalkit.results.items import SubsetItems, TaskItems, items_path, read_items
from evalkit.results.records import NO_REVISION, EvalkitBlock, FailureRecord, ModelBlock, ResultFile, TaskBlock
from evalkit.results.store import FAILURES_DIR, Filed, Found, ResultSink, ResultStore, read_failure, safe_name

__all__ = [
    "FAILURES_DIR", "NO_REVISION", "EvalkitBlock", "FailureRecord", "Filed", "Found", "ModelBlock", "ResultFile",
    "ResultSink", "ResultStore", "SubsetItems", "TaskBlock", "TaskItems", "atomic_write_bytes", "atomic_write_json",
    "atomic_write_text", "items_path", "read_failure", "read_items", "read_json", "redact", "safe_name",
]
