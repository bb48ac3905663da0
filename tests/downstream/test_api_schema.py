"""api_tokens as declared (pipeline/store/api_schema.py) is what migration 0005 creates."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import pipeline.store.api_schema  # noqa: F401 - registers api_tokens on the shared metadata
from pipeline.store.schema import metadata


def test_api_tokens_match_migration_0005(engine: Engine) -> None:
    def ours(name, kind, parents):  # type: ignore[no-untyped-def]  # other tables are other migrations' to check
        return kind != "table" or name == "api_tokens"

    def our_objects(obj, name, kind, reflected, compare_to):  # type: ignore[no-untyped-def]
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or table.name == "api_tokens"

    opts = {"include_name": ours, "include_object": our_objects}
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
