"""evalkit — reproducible evaluation of text-embedding models on top of mteb."""

from evalkit.version import __version__, version_line

__all__ = ["__version__", "version_line"]
