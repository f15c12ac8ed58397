"""Leaderboard export: result folders -> leaderboard.json (versioned schema), Markdown,
self-contained HTML, a quality-vs-speed PNG and, on request, mteb's results-folder layout.

    python -m evalkit.leaderboard outputs/results --out leaderboard.json

A multirun builds one at its end (``evalkit.leaderboard.hydra_callback``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from evalkit.leaderboard.build import build_leaderboard
from evalkit.leaderboard.schema import SCHEMA_VERSION, Leaderboard, json_schema

__all__ = ["FORMATS", "SCHEMA_VERSION", "Leaderboard", "build_leaderboard", "json_schema", "write_outputs"]

log = logging.getLogger("evalkit.leaderboard")
FORMATS = ("json", "md", "html", "png")


def write_outputs(lb: Leaderboard, out_json: Path, formats=FORMATS, mteb_dir: Path | None = None) -> dict[str, Path]:
    """Write the chosen formats beside ``out_json`` (same stem), each atomically."""
    from evalkit.results import atomic_write_bytes, atomic_write_text

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown leaderboard format(s) {sorted(unknown)}; valid: {', '.join(FORMATS)}")
    out_json = Path(out_json)
    written: dict[str, Path] = {}
    png = lengths = None
    if "png" in formats or "html" in formats:
        from evalkit.leaderboard.plot import length_png, to_png

        png, lengths = to_png(lb), length_png(lb)
    if "json" in formats:
        atomic_write_text(out_json, lb.model_dump_json(indent=2) + "\n")
        written["json"] = out_json
    if "md" in formats:
        from evalkit.leaderboard.markdown import to_markdown

        written["md"] = out_json.with_suffix(".md")
        atomic_write_text(written["md"], to_markdown(lb))
    if "html" in formats:
        from evalkit.leaderboard.html import to_html

        written["html"] = out_json.with_suffix(".html")
        atomic_write_text(written["html"], to_html(lb, plot_png=png, length_png=lengths))
    if "png" in formats and png is not None:
        written["png"] = out_json.with_suffix(".png")
        atomic_write_bytes(written["png"], png)
        if lengths is not None:
            written["by_length_png"] = out_json.with_name(out_json.stem + "_by_length.png")
            atomic_write_bytes(written["by_length_png"], lengths)
    if mteb_dir is not None:
        from evalkit.leaderboard.mteb_export import write_mteb_layout

        write_mteb_layout(lb, mteb_dir)
        written["mteb"] = Path(mteb_dir)
    return written
