"""Connector cursors in the shared store (table `connector_cursors`), one row per (connector, key)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.store.schema import connector_cursors


class SqlCursorStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, connector: str, key: str) -> str | None:
        query = select(connector_cursors.c.value).where(
            connector_cursors.c.connector == connector, connector_cursors.c.key == key)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def save(self, connector: str, key: str, value: str) -> None:
        row = {"value": value, "updated_at": datetime.now(UTC)}
        where = (connector_cursors.c.connector == connector) & (connector_cursors.c.key == key)
        with self.engine.begin() as conn:
            if conn.execute(update(connector_cursors).where(where).values(**row)).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(connector_cursors.insert().values(connector=connector, key=key, **row))
        except IntegrityError:  # another process inserted it first: ours is the later value
            with self.engine.begin() as conn:
                conn.execute(update(connector_cursors).where(where).values(**row))
