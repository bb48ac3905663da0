"""Operators' corrections: a message relabelled by a person, kept as training data with who and when.

`record_correction` is the one entry point for the CLI (`intake classifiers correct`) and the REST
API. It stores the correction only; updating the ticket's own labels (and its events) is the caller's
business. `corrections_for_task` hands them to `train --with-corrections`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from classifiers.labels import CATEGORIES, TYPES, URGENCIES
from pipeline.stages.normalise import normalise_text
from pipeline.store.operator_schema import label_corrections
from pipeline.store.schema import messages


class CorrectionError(ValueError):
    """The correction cannot be stored; the message says which field or message is wrong."""


@dataclass(frozen=True, slots=True)
class Correction:
    id: int
    message_id: int
    ticket_id: int | None
    type: str
    category: str | None
    urgency: str | None
    previous: dict[str, Any]
    corrected_by: str
    corrected_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"corrected_at": self.corrected_at.isoformat()}


def _check(type_: str, category: str | None, urgency: str | None, by: str) -> None:
    if type_ not in TYPES:
        raise CorrectionError(f"type {type_!r} is not one of {', '.join(TYPES)}")
    if category is not None and category not in CATEGORIES:
        raise CorrectionError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if category is not None and type_ != "complaint":
        raise CorrectionError(f"category {category!r} given for a {type_}: only complaints have a category")
    if urgency is not None and urgency not in URGENCIES:
        raise CorrectionError(f"urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
    if not by.strip():
        raise CorrectionError("who corrected it (by) is required")


def record_correction(engine: Engine, message_id: int, type_: str, category: str | None = None,
                      urgency: str | None = None, by: str = "", at: datetime | None = None) -> Correction:
    """Store an operator's labels for a stored message. Raises CorrectionError for an unknown label
    or message id."""
    with engine.begin() as conn:
        return store_correction(conn, message_id, type_, category, urgency, by, at)


def store_correction(conn: Connection, message_id: int, type_: str, category: str | None = None,
                     urgency: str | None = None, by: str = "", at: datetime | None = None) -> Correction:
    """`record_correction` inside the caller's transaction (a ticket relabel stores it with the
    ticket's change and its event, all or nothing)."""
    _check(type_, category, urgency, by)
    at = at or datetime.now(UTC)
    msg = conn.execute(select(messages.c.id, messages.c.ticket_id, messages.c.subject, messages.c.text,
                              messages.c.language, messages.c.type, messages.c.category, messages.c.urgency)
                       .where(messages.c.id == message_id)).first()
    if msg is None:
        raise CorrectionError(f"no message with id {message_id}")
    previous = {"type": msg.type, "category": msg.category, "urgency": msg.urgency}
    text = f"{msg.subject}\n{msg.text}" if msg.subject else msg.text  # what the classifier read
    new_id = conn.execute(insert(label_corrections).values(
        message_id=msg.id, ticket_id=msg.ticket_id, text=text, language=msg.language, type=type_,
        category=category, urgency=urgency, previous=previous, corrected_by=by.strip()[:100],
        corrected_at=at).returning(label_corrections.c.id)).scalar_one()
    return Correction(new_id, msg.id, msg.ticket_id, type_, category, urgency, previous, by.strip()[:100], at)


def same_text(text: str) -> str:
    """The key under which a correction replaces a file's label: whitespace, case and Unicode
    compatibility forms do not count: the key is the text as the pipeline stores it (NFKC, no control or
    zero-width characters: "！" is kept as "!"), case-folded."""
    return " ".join(normalise_text(text).casefold().split())


def corrections_for_task(engine: Engine, task: str) -> list[tuple[str, str, str]]:
    """(text, lang, label) for `task` (type, category or urgency), the latest correction per text."""
    if task not in ("type", "category", "urgency"):
        raise CorrectionError(f"unknown task {task!r}")
    column = label_corrections.c[task]
    query = (select(label_corrections.c.text, label_corrections.c.language, column)
             .where(column.is_not(None)).order_by(label_corrections.c.corrected_at, label_corrections.c.id))
    with engine.connect() as conn:
        rows = conn.execute(query).tuples().all()
    latest = {same_text(text): (text, lang, label) for text, lang, label in rows}
    return list(latest.values())
