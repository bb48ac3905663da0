"""Pipeline stages. Each is a small unit with a `name` and one method; items flow through in order:
normalise -> language -> classify (pure, per message), then dedup -> ticket (inside the store's
transaction, because they read and write tickets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from classifiers.labels import Labels
from classifiers.language import LanguageResult
from pipeline.dedup.sketch import NearSketch
from pipeline.envelope import Envelope


@dataclass(slots=True)
class WorkItem:
    """One message on its way through the stages; stages fill in their fields."""

    envelope: Envelope
    source: str = ""
    attempts: int = 1
    text: str = ""
    classify_text: str = ""
    content_hash: str = ""
    language: LanguageResult | None = None
    labels: Labels | None = None
    index: int = -1  # position in the batch it came in
    payload: bytes = b""  # the envelope's JSON as received
    near: NearSketch | None = None  # sketches for dedup, when a stage worker made them (else the store does)
    ticket_notes: list[str] = field(default_factory=list)  # what the ticket stage changed and why, with the reasons


class Stage(Protocol):
    name: str

    def __call__(self, item: WorkItem) -> None: ...
