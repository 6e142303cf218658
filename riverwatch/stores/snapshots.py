"""Online-model snapshots in Redis: the single writer publishes, every scorer reloads."""

from __future__ import annotations

import redis

from riverwatch.core.names import Names


class SnapshotStore:
    """Latest snapshot bytes and version of each named online model."""

    def __init__(self, client: redis.Redis, names: Names):
        self.r = client
        self.names = names

    def publish(self, name: str, blob: bytes, version: str) -> None:
        """Store a new snapshot and its version atomically."""
        p = self.r.pipeline(transaction=True)
        p.set(self.names.model_snapshot(name), blob)
        p.set(self.names.model_version(name), version)
        p.execute()

    def version(self, name: str) -> str | None:
        """The version of the latest snapshot, or None when none was published."""
        v = self.r.get(self.names.model_version(name))
        if v is None:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)

    def load(self, name: str) -> tuple[bytes, str] | None:
        """The latest snapshot and its version, read together."""
        p = self.r.pipeline(transaction=True)
        p.get(self.names.model_snapshot(name))
        p.get(self.names.model_version(name))
        blob, version = p.execute()
        if blob is None or version is None:
            return None
        return blob, version.decode()
