"""Shadow mode: where a candidate version's answer differs from the active one's, recorded for review.

Disagreements are found in the classify stage (which may run in a worker process without a
database) and written after the batch is stored, when the messages have their ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from pipeline.store.operator_schema import shadow_disagreements
from pipeline.store.schema import messages

FIELDS = ("type", "category", "urgency")


@dataclass(frozen=True, slots=True)
class Disagreement:
    delivery_key: str
    active_version: str | None
    candidate_version: str
    active_labels: dict[str, Any]
    candidate_labels: dict[str, Any]
    fields: tuple[str, ...]
    active_confidence: float | None
    candidate_confidence: float | None


def _labels(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer.get(k) for f in FIELDS for k in (f, f"{f}_confidence", f"{f}_source")}


def compare(key: str, active: dict[str, Any], candidate: dict[str, Any], active_version: str | None,
            candidate_version: str, task: str) -> Disagreement | None:
    differ = tuple(f for f in FIELDS if active.get(f) != candidate.get(f))
    if not differ:
        return None
    return Disagreement(key, active_version, candidate_version, _labels(active), _labels(candidate), differ,
                        active.get(f"{task}_confidence"), candidate.get(f"{task}_confidence"))


def record_disagreements(engine: Engine, found: list[Disagreement]) -> int:
    """Store disagreements with the ids of their (now stored) messages; one row per message and
    candidate, so a redelivered batch adds nothing. Returns the rows added."""
    if not found:
        return 0
    keys = sorted({d.delivery_key for d in found})
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = dict(conn.execute(select(messages.c.delivery_key, messages.c.id)
                                .where(messages.c.delivery_key.in_(keys))).tuples().all())
        seen = set(conn.execute(select(shadow_disagreements.c.delivery_key, shadow_disagreements.c.candidate_version)
                                .where(shadow_disagreements.c.delivery_key.in_(keys))).tuples().all())
        rows = [{"message_id": ids.get(d.delivery_key), "delivery_key": d.delivery_key,
                 "active_version": d.active_version, "candidate_version": d.candidate_version,
                 "active_labels": d.active_labels, "candidate_labels": d.candidate_labels,
                 "fields": ",".join(d.fields), "active_confidence": d.active_confidence,
                 "candidate_confidence": d.candidate_confidence, "created_at": now}
                for d in {(d.delivery_key, d.candidate_version): d for d in found}.values()
                if (d.delivery_key, d.candidate_version) not in seen]
        if rows:
            conn.execute(insert(shadow_disagreements), rows)
    return len(rows)


def list_disagreements(engine: Engine, limit: int = 50, candidate: str | None = None) -> list[dict[str, Any]]:
    """The newest disagreements first."""
    t = shadow_disagreements
    query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
    if candidate:
        query = query.where(t.c.candidate_version == candidate)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{"id": r["id"], "message_id": r["message_id"], "delivery_key": r["delivery_key"],
             "active_version": r["active_version"], "candidate_version": r["candidate_version"],
             "fields": r["fields"].split(","), "active": r["active_labels"], "candidate": r["candidate_labels"],
             "active_confidence": r["active_confidence"], "candidate_confidence": r["candidate_confidence"],
             "at": r["created_at"].isoformat()} for r in rows]
