"""Rules and the active model, combined into one answer per message.

How they combine, per label the model was trained for (its metadata `task`):
- a rule answer with confidence >= RULES_DECIDE (several high-precision cues agreeing) decides;
- otherwise the model's label and probability are the answer, and the reason names the version;
- with no active model, or for the labels the model does not predict, the rules answer.
Category follows the final type (only complaints have one; "other" when no category cue matched),
and a spam message is never urgent. Empty text gets the rules' default with confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from classifiers.rules import RuleClassifier

RULES_DECIDE = 0.75
_LEVEL = {"low": 0, "normal": 1, "high": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    lang: str = "und"
    channel: str | None = None


class CombinedClassifier:
    def __init__(self, rules: RuleClassifier, model: Any | None = None, version: str | None = None,
                 task: str | None = None) -> None:
        self.rules, self.model, self.version, self.task = rules, model, version, task

    def classify(self, messages: list[Message]) -> list[dict[str, Any]]:
        ruled = [self.rules.classify(m.text, m.lang, public=m.channel in ("social", "twitter", "facebook"))
                 for m in messages]
        predicted = self.model.predict([m.text for m in messages]) if self.model else [None] * len(messages)
        return [self._one(m, r, p) for m, r, p in zip(messages, ruled, predicted, strict=True)]

    def _one(self, msg: Message, ruled: Any, pred: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": ruled.type, "type_confidence": round(ruled.type_confidence, 3), "type_source": "rules",
            "category": ruled.category, "category_confidence": 0.6 if ruled.category else None,
            "category_source": "rules",
            "urgency": ruled.urgency, "urgency_confidence": 0.6, "urgency_source": "rules",
            "reasons": [f"rules: {r}" for r in ruled.reasons],
        }
        if not msg.text.strip():
            out.update(type_confidence=0.0, category_confidence=None, urgency_confidence=0.0)
            out["reasons"].append("empty text: default labels, confidence 0")
            return out
        if pred is not None and self.task:
            key = self.task
            rules_conf = out[f"{key}_confidence"] or 0.0
            if key == "type" and rules_conf >= RULES_DECIDE:
                out["reasons"].append(f"{key} {out[key]}: rules decide (confidence {rules_conf:.2f} >= "
                                      f"{RULES_DECIDE}); model {self.version} said {pred.label} {pred.confidence:.2f}")
            else:
                out.update({key: pred.label, f"{key}_confidence": round(pred.confidence, 3),
                            f"{key}_source": f"model:{self.version}"})
                out["reasons"].append(f"{key} {pred.label}: model {self.version} p={pred.confidence:.2f}"
                                      + (f" (rules had {rules_conf:.2f})" if key == "type" else ""))
        if out["type"] != "complaint":
            out["category"] = out["category_confidence"] = None
        elif out["category"] is None:
            out.update(category="other", category_confidence=0.3)
        if out["type"] == "spam" and _LEVEL[out["urgency"]] > 0:
            out["urgency"] = "low"
            out["reasons"].append("urgency low: spam")
        return out
