"""Errors of the export package (their own module, so every export module can raise them)."""


class ExportVerificationError(RuntimeError):
    """The reloaded export does not reproduce the in-memory model."""
