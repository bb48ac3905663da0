"""One store connection per request, shared by the token check and the endpoint (one pool checkout)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection


def _connection(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


ReadConnection = Annotated[Connection, Depends(_connection)]
