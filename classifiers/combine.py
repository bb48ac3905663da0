"""Rules and the active model, combined into one answer per message.

How they combine, per label the model was trained for (its metadata `task`), first match wins:
- for type, spam found by the rules (noise, ad cues, filler such as a bare "Good!!" outside a
  conversation) with confidence >= RULES_SPAM decides: the shipped model has seen few ads, and noise
  is not something a character model learns well;
- for type, suggestion cues scoring SUGGESTION_DECIDES or more that outweigh every other type's cues
  decide ("Suggestion: add a filter, it is inconvenient now" is no complaint);
- for type, when the rules found complaint or praise cues and those outweigh every other type's cues,
  the answer is complaint or praise, whichever has the larger rule score plus model probability:
  the lexicons generalise across domains (negation, intensifiers, contrast) where a model trained
  on a few thousand short lines does not, and the model still breaks ties and weak evidence;
- otherwise the model's label and probability are the answer, and the reason names the version;
- with no active model, or for the labels the model does not predict, the rules answer.
Category follows the final type (only complaints have one; "other" when no category cue matched),
and a spam message is never urgent. Empty text gets the rules' default with confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from classifiers.rules import RuleClassifier, urgency_for

RULES_DECIDE = 0.8  # a lone "?" gives the rules 0.75 for inquiry: rhetorical complaints go on to the model
RULES_SPAM = 0.5
# suggestion cues this strong ("Suggestion: ...", "it would be great if") that outweigh every other type
# decide: the shipped model has seen few suggestions and takes the inconvenience they mention for a complaint
SUGGESTION_DECIDES = 4.0
_POLAR = ("complaint", "praise")
PUBLIC_CHANNELS = frozenset({"social", "twitter", "facebook"})
# in a dialogue a bare "ok" or "great" answers someone: not filler (classifiers/filler.py)
CONVERSATION_CHANNELS = frozenset({"chat", "email", "phone", "telegram", "sms"})


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
        ruled = [self.rules.classify(m.text, m.lang, public=m.channel in PUBLIC_CHANNELS,
                                     conversation=m.channel in CONVERSATION_CHANNELS) for m in messages]
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
            said = f"model {self.version} said {pred.label} {pred.confidence:.2f}"
            if key == "type" and out["type"] == "spam" and rules_conf >= RULES_SPAM:
                out["reasons"].append(f"type spam: rules decide spam (confidence {rules_conf:.2f} >= {RULES_SPAM}); "
                                      + said)
            elif key == "type" and _clear_suggestion(ruled):
                out["reasons"].append(f"type suggestion: clear suggestion cues decide (score >= "
                                      f"{SUGGESTION_DECIDES:g}); " + said)
            elif key == "type" and (polar := _polar(dict(ruled.type_scores), pred.scores)) is not None:
                label, score = polar
                out.update(type=label, type_confidence=round(min(1.0, score), 3),
                           type_source=f"rules+model:{self.version}")
                out["reasons"].append(f"type {label}: rule polarity plus model probability ({said})")
            elif key == "type" and rules_conf >= RULES_DECIDE:
                out["reasons"].append(f"type {out['type']}: rules decide (confidence {rules_conf:.2f} >= "
                                      f"{RULES_DECIDE}); {said}")
            else:
                out.update({key: pred.label, f"{key}_confidence": round(pred.confidence, 3),
                            f"{key}_source": f"model:{self.version}"})
                out["reasons"].append(f"{key} {pred.label}: model {self.version} p={pred.confidence:.2f}"
                                      + (f" (rules had {rules_conf:.2f})" if key == "type" else ""))
        if out["type"] != "complaint":
            out["category"] = out["category_confidence"] = None
        elif out["category"] is None:
            out.update(category="other", category_confidence=0.3)
        if out["type"] != ruled.type and (urgency := urgency_for(out["type"], ruled.signals, ruled.urgency_bumps)) \
                != out["urgency"]:
            out["urgency"] = urgency
            out["reasons"].append(f"urgency {urgency}: the same signals for a {out['type']}")
        return out


def _clear_suggestion(ruled: Any) -> bool:
    """Suggestion cues scoring SUGGESTION_DECIDES or more, well ahead of any complaint cues, and no
    harm or legal threat: "Suggestion: refund me or I call my lawyer" stays a complaint."""
    scores = dict(ruled.type_scores)
    return (ruled.type == "suggestion" and scores["suggestion"] >= SUGGESTION_DECIDES
            and scores["suggestion"] >= 1.5 * scores.get("complaint", 0.0)
            and not ruled.signals & {"safety", "security", "legal"})


def _polar(rule_scores: dict[str, float], model_scores: dict[str, float]) -> tuple[str, float] | None:
    """Complaint or praise when the rules' polarity cues outweigh their other cues: the side with
    the larger rule score plus model probability, and its confidence (that side's share, scaled by
    how much evidence there is). None when the rules saw no polarity."""
    polar = {label: rule_scores.get(label, 0.0) for label in _POLAR}
    if not any(polar.values()):
        return None
    if max(polar.values()) < max((v for k, v in rule_scores.items() if k not in _POLAR), default=0.0):
        return None
    combined = {label: polar[label] + model_scores.get(label, 0.0) for label in _POLAR}
    label = max(_POLAR, key=lambda x: (combined[x], x == "complaint"))
    total = sum(combined.values())
    return label, combined[label] / total * min(1.0, 0.5 + combined[label] / 4)
