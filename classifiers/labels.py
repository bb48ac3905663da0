"""The label vocabulary and the result every classifier returns: labels, confidences, reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MessageType = Literal["complaint", "suggestion", "inquiry", "praise", "spam"]
TYPES: tuple[MessageType, ...] = ("complaint", "suggestion", "inquiry", "praise", "spam")
CATEGORIES = ("product", "delivery", "billing", "service", "misleading", "resolution_delay",
              "unwanted_contact", "account_security", "other")
URGENCIES = ("low", "normal", "high", "critical")
URGENCY_SIGNALS = ("safety", "security", "legal", "public", "anger", "deadline")


@dataclass(frozen=True, slots=True)
class Labels:
    type: MessageType
    type_confidence: float
    category: str | None
    urgency: str
    reasons: tuple[str, ...] = field(default=())
    type_scores: tuple[tuple[str, float], ...] = field(default=())  # every type's rule score, for combining
    # what urgency was derived from, so that it follows a type the model changes (rules.urgency_for)
    signals: frozenset[str] = field(default=frozenset())
    urgency_bumps: int = 0  # repeat contact and VIP

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type, "type_confidence": round(self.type_confidence, 3),
                "category": self.category, "urgency": self.urgency, "reasons": list(self.reasons)}
