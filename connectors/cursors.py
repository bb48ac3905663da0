"""Where connectors keep their place in a channel (IMAP UIDs, Telegram update ids, since-ids).

A connector saves a cursor only after the sink durably accepted everything before it, so a
restart resumes after the last accepted message: nothing skipped, at most the unacknowledged
tail read again (and the store's delivery keys make that harmless).
"""

from __future__ import annotations

from typing import Protocol


class CursorStore(Protocol):
    def load(self, connector: str, key: str) -> str | None: ...

    def save(self, connector: str, key: str, value: str) -> None: ...


class MemoryCursorStore:
    """For tests and one-off runs: cursors live as long as the object."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def load(self, connector: str, key: str) -> str | None:
        return self.values.get((connector, key))

    def save(self, connector: str, key: str, value: str) -> None:
        self.values[(connector, key)] = value
