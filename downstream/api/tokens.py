"""API tokens in the store: created with a name and a role, kept only as a SHA-256 hash, revoked by name.

A token is 32 random bytes, so a plain hash is enough (no slow KDF: nothing to brute-force), and a
lookup is one index probe on the hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, insert, select, update

from pipeline.envelope import utcnow
from pipeline.store.api_schema import ROLES, api_tokens

TOKEN_PREFIX = "omni_"


class TokenError(Exception):
    """A token that cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name and role."""

    token_id: int
    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, name: str, role: str, now: datetime | None = None) -> str:
    """A new token for `name` with `role`; the returned secret is shown once and not stored."""
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name.strip():
        raise TokenError("a token needs a name")
    taken = conn.execute(select(api_tokens.c.id).where(and_(api_tokens.c.name == name,
                                                            api_tokens.c.revoked_at.is_(None)))).first()
    if taken:
        raise TokenError(f"an active token named {name!r} exists: revoke it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(api_tokens).values(name=name, role=role, token_hash=hash_token(token),
                                           created_at=now or utcnow()))
    return token


def revoke_token(conn: Connection, name: str, now: datetime | None = None) -> bool:
    """Revoke the active token named `name`; False if there is none."""
    done = conn.execute(update(api_tokens).where(and_(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None)))
                        .values(revoked_at=now or utcnow()))
    return done.rowcount == 1


def list_tokens(conn: Connection, include_revoked: bool = False) -> list[dict[str, object]]:
    query = select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at,
                   api_tokens.c.revoked_at).order_by(api_tokens.c.id)
    if not include_revoked:
        query = query.where(api_tokens.c.revoked_at.is_(None))
    return [dict(r) for r in conn.execute(query).mappings()]


def authenticate(conn: Connection, token: str) -> Principal | None:
    """The active token's principal, or None for an unknown or revoked token."""
    row = conn.execute(select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.revoked_at)
                       .where(api_tokens.c.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.id, row.name, row.role)
