"""Errors that reach the user as one clear message, not a traceback."""

import difflib


class EvalkitError(Exception):
    """Base of errors evalkit reports to the user without a traceback."""


class ConfigError(EvalkitError):
    pass


class DataError(EvalkitError):
    pass


class EndpointError(EvalkitError):
    pass


class ModelLoadError(EvalkitError):
    """The model (or its server) could not be loaded: every task of the job fails with it."""


class ProbeError(ModelLoadError):
    """The model loaded but failed its known-answer probe: it is not the model its config names."""


def unknown_name(kind: str, name: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(sorted(valid))}")
