"""A calm console: evalkit's own lines (progress, summary, errors) on the terminal; the
libraries' INFO chatter (mteb, transformers, sentence-transformers, datasets) only in the
run's log file (Hydra's ``<run dir>/<job>.log``). ``verbose=true`` brings them back."""

from __future__ import annotations

import logging
import os

QUIET_LIBRARIES = ("mteb", "transformers", "sentence_transformers", "datasets", "huggingface_hub", "urllib3",
                   "httpx", "openai", "filelock", "torch", "hydra_plugins", "submitit",
                   "py")  # py.warnings: library UserWarnings (mteb's "task is superseded" and the like)


class ConsoleFilter(logging.Filter):
    """On the console: evalkit's records, and anyone's warnings that are not library noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == "evalkit" or name.startswith("evalkit."):
            return True
        if name.split(".")[0] in QUIET_LIBRARIES:
            return record.levelno >= logging.ERROR
        return record.levelno >= logging.WARNING


def setup(verbose: bool = False) -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:  # datasets' "Standardizing text corpus format" bars inside mteb
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    try:  # transformers logs through its own stderr handler: send its records to ours instead
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.disable_default_handler()
        tlog.enable_propagation()
    except ImportError:  # pragma: no cover
        pass
    logging.captureWarnings(True)
    if verbose:
        return
    for name in ("mteb", "sentence_transformers", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.INFO)  # into the log file, at INFO
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())
