"""Console sign-in: the operator pastes an API token once; it travels back in an HttpOnly,
SameSite=Strict cookie. Forms carry a CSRF field derived from the token, checked on every POST."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request

from downstream.api.auth import READERS, WRITERS
from downstream.api.tokens import Principal, authenticate

COOKIE = "omnintake_console"


class SignInRequired(Exception):
    """No valid console cookie: the page answers with a redirect to the sign-in form."""


def csrf_token(token: str) -> str:
    return hashlib.sha256(b"omnintake-console-csrf:" + token.encode()).hexdigest()[:32]


def principal_of(request: Request, token: str | None) -> Principal | None:
    if not token:
        return None
    with request.app.state.engine.connect() as conn:
        return authenticate(conn, token)


def console_user(request: Request) -> Principal:
    principal = principal_of(request, request.cookies.get(COOKIE))
    if principal is None or principal.role not in READERS:
        raise SignInRequired()
    return principal


def console_writer(request: Request, principal: Annotated[Principal, Depends(console_user)],
                   csrf: Annotated[str, Form()] = "") -> Principal:
    """An operator or admin posting a form of this console (the CSRF field must match the cookie)."""
    if not hmac.compare_digest(csrf, csrf_token(request.cookies.get(COOKIE, ""))):
        raise HTTPException(403, detail="the form is stale or not from this console: reload the page")
    if principal.role not in WRITERS:
        raise HTTPException(403, detail=f"role {principal.role!r} may only read")
    return principal
