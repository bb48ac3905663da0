"""Bearer-token authentication and role checks, as FastAPI dependencies.

No token or an unknown / revoked one: 401 with `WWW-Authenticate: Bearer`. A valid token whose
role may not do this: 403. Admin may do everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from downstream.api.store import ReadConnection
from downstream.api.tokens import Principal, authenticate

VIEWER, OPERATOR, ADMIN, SUBSCRIBER = "viewer", "operator", "admin", "subscriber"
READERS = (VIEWER, OPERATOR, ADMIN)  # who may read tickets, customers and dead letters
WRITERS = (OPERATOR, ADMIN)  # who may change them

_bearer = HTTPBearer(auto_error=False, description="an API token: `intake api token create NAME --role ROLE`")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


def current_principal(conn: ReadConnection,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None:
        raise _unauthorized("missing bearer token")
    principal = authenticate(conn, credentials.credentials)
    conn.rollback()  # end the read: on SQLite it holds the write lock, which a changing endpoint needs next
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    return principal


def require_role(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets through the given roles (and admin), 403 for the others."""
    allowed = frozenset(roles) | {ADMIN}

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(403, detail=f"role {principal.role!r} may not do this; needs one of "
                                            f"{', '.join(sorted(allowed))}")
        return principal

    return check
