"""evalkit — reproducible evaluation of text-embedding models on top of mteb."""

__version__ = "0.1.0"
