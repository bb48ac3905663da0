"""Three kinds of error, mapped once at the boundary: fatal, retriable, skippable.

Callers check `retriable`: a retriable error leaves offsets and cursors where they are and is
tried again with backoff; a skippable one sends the message to the dead letters with its reason.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError


class IntakeError(Exception):
    retriable = False


class FatalError(IntakeError):
    """Stop the process: configuration or programming error that retrying cannot fix."""


class RetriableError(IntakeError):
    """A service is unavailable for now (database, broker); retry with backoff."""

    retriable = True


class SkippableError(IntakeError):
    """This message cannot be processed; dead-letter it and go on."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def is_unavailable(exc: BaseException) -> bool:
    """The database is down or the connection was lost (as opposed to a bad statement or row)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_conflict(exc: BaseException) -> bool:
    """Another writer stored the same row first; retrying the batch sees it and skips it."""
    return isinstance(exc, IntegrityError)
