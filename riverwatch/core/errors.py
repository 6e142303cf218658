"""The exception tree: one root, a few subclasses whose messages tell the user what to do."""


class RiverwatchError(Exception):
    """Root of every error riverwatch raises on purpose."""


class ConfigError(RiverwatchError, ValueError):
    """A setting is missing, malformed or inconsistent; the message names the variable."""


class InvalidEvent(RiverwatchError, ValueError):
    """A record does not match its contract; ``errors`` lists ``{"field", "reason"}`` items."""

    def __init__(self, errors: list[dict[str, str]], kinds: list[tuple[str, str]] | None = None):
        self.errors = errors
        # (top-level field, pydantic error type) of every error: what the data-quality
        # counters count (core.rejects), where ``errors`` says it for people
        self.kinds = kinds or []
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class ServiceUnavailable(RiverwatchError):
    """A backing service (broker, Redis, embedded server) did not answer in time."""


class ModelError(RiverwatchError):
    """A model snapshot or artifact cannot be used (corrupt, mismatched library versions)."""
