"""Tables of the operator loop (migration 0004): the classifier control row that running pipelines
poll, shadow-mode disagreements, and operators' label corrections (training data)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text

from pipeline.store.schema import Id, UtcDateTime, metadata

# One row per classifier group ("default"): which model version is active and which one runs in
# shadow. Pipelines poll it; `promote`, `rollback` and `shadow` write it.
classifier_control = Table(
    "classifier_control", metadata,
    Column("name", String(40), primary_key=True),
    Column("active_version", String(64)),  # NULL: no version promoted (the shipped model, else rules only)
    Column("shadow_version", String(64)),  # NULL: shadow mode off
    Column("generation", Integer, nullable=False),  # +1 on every change
    Column("updated_by", String(100), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# A candidate (shadow) version's answer that differs from the active one's, for review.
shadow_disagreements = Table(
    "shadow_disagreements", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id),  # no foreign key: review data must not block storing or deleting messages
    Column("delivery_key", Text, nullable=False),
    Column("active_version", String(64)),
    Column("candidate_version", String(64), nullable=False),
    Column("active_labels", JSON, nullable=False),  # {type, category, urgency, *_confidence}
    Column("candidate_labels", JSON, nullable=False),
    Column("fields", String(40), nullable=False),  # which labels differ: "type,urgency"
    Column("active_confidence", Float),  # of the task the candidate predicts
    Column("candidate_confidence", Float),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("uq_shadow_disagreements_delivery_key_candidate_version", "delivery_key", "candidate_version",
          unique=True),
    Index("ix_shadow_disagreements_created_at", "created_at"),
)

# An operator's relabel of a message: the text is copied so the training example outlives the message.
label_corrections = Table(
    "label_corrections", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, index=True),
    Column("ticket_id", Id),
    Column("text", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("category", String(32)),
    Column("urgency", String(16)),
    Column("previous", JSON, nullable=False),  # the labels the message had: {type, category, urgency}
    Column("corrected_by", String(100), nullable=False),
    Column("corrected_at", UtcDateTime(), nullable=False),
)
