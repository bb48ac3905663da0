"""Errors, mapped once at the boundary into three kinds:

- retriable (`RetriableError`, or a broker error): a service is away; offsets and cursors stay where
  they are and the work is tried again with backoff;
- skippable: the message itself is bad; it becomes a dead letter with its reason
  (`connectors.base.InputError` for input a connector cannot turn into an envelope);
- fatal: anything else (an invalid configuration is `pipeline.config.ConfigError`); the process
  stops with the reason, and the uncommitted work is redelivered to the next one.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError


class RetriableError(Exception):
    """A service is unavailable for now (database, broker); retry with backoff."""


def is_unavailable(exc: BaseException) -> bool:
    """The database is down or the connection was lost (as opposed to a bad statement or row)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_conflict(exc: BaseException) -> bool:
    """Another writer stored the same row first; retrying the batch sees it and skips it."""
    return isinstance(exc, IntegrityError)
