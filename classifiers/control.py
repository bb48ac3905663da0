"""The classifier control row: which version is active and which runs in shadow, for every
pipeline process that polls the store (SQLite or PostgreSQL).

`promote`, `rollback` and `shadow` (classifiers/rollout.py, which the CLI, the API and the console
call) write the file record (active.json) and then this row; a process reads the row every few
seconds (classifiers/hot_reload.py). With no row yet (nothing promoted through a store), processes
read active.json instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update

from pipeline.store.operator_schema import classifier_control

GROUP = "default"


@dataclass(frozen=True, slots=True)
class ControlState:
    active_version: str | None
    shadow_version: str | None
    generation: int = 0


def read_control(conn: Connection, group: str = GROUP) -> ControlState | None:
    row = conn.execute(select(classifier_control.c.active_version, classifier_control.c.shadow_version,
                              classifier_control.c.generation)
                       .where(classifier_control.c.name == group)).first()
    return ControlState(row.active_version, row.shadow_version, row.generation) if row else None


def write_control(engine: Engine, active: str | None, shadow: str | None, by: str, group: str = GROUP
                  ) -> ControlState:
    """Set the row (creating it the first time); the generation goes up by one on every write."""
    values = {"active_version": active, "shadow_version": shadow, "updated_by": by[:100],
              "updated_at": datetime.now(UTC)}
    with engine.begin() as conn:
        current = read_control(conn, group)
        if current is None:
            conn.execute(insert(classifier_control).values(name=group, generation=1, **values))
            return ControlState(active, shadow, 1)
        conn.execute(update(classifier_control).where(classifier_control.c.name == group)
                     .values(generation=classifier_control.c.generation + 1, **values))
        return ControlState(active, shadow, current.generation + 1)
