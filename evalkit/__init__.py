"""evalkit — reproducible evaluation of text-embedding models on top of mteb."""

__version__ = "0.1.0"


def version_line() -> str:
    import evalkit

    return f"evalkit {__version__} (import package evalkit, at {evalkit.__path__[0]})"
