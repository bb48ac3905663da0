"""The classifier a running pipeline uses: rules plus the active model (classifiers/combine.py),
a whole batch per call, and optionally a shadow version answering beside it.

The rules, active model and shadow model are held in one immutable snapshot that hot reload
(classifiers/hot_reload.py) swaps in one assignment, so a batch is classified by one consistent set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.active_model import LoadedModel
from classifiers.combine import CONVERSATION_CHANNELS, PUBLIC_CHANNELS, CombinedClassifier, Message
from classifiers.labels import Labels
from classifiers.rules import RULES_DIR, RuleClassifier
from classifiers.shadow import Disagreement, compare


@dataclass(frozen=True, slots=True)
class Request:
    text: str
    lang: str
    public: bool = False
    vip: bool = False
    key: str = ""  # the delivery key, named in shadow disagreements
    conversation: bool = False  # chat, email, a call: a bare "ok" answers someone (classifiers/filler.py)


@dataclass(frozen=True, slots=True)
class Snapshot:
    rules: RuleClassifier
    rules_hash: str
    active: LoadedModel | None
    shadow: LoadedModel | None


class _BatchCombiner(CombinedClassifier):
    """combine.py's policy on rule answers computed once per batch (with the VIP and public signals
    the pipeline knows), so shadow mode reuses them instead of running the rules twice."""

    def combine(self, messages: list[Message], ruled: list[Labels]) -> list[dict[str, Any]]:
        predicted = self.model.predict([m.text for m in messages]) if self.model else [None] * len(messages)
        return [self._one(m, r, p) for m, r, p in zip(messages, ruled, predicted, strict=True)]


def _combiner(snapshot: Snapshot, model: LoadedModel | None) -> _BatchCombiner:
    if model is None:
        return _BatchCombiner(snapshot.rules)
    return _BatchCombiner(snapshot.rules, model.model, model.version, model.task)


def labels_of(answer: dict[str, Any]) -> Labels:
    return Labels(answer["type"], answer["type_confidence"], answer["category"], answer["urgency"],
                  tuple(answer["reasons"]))


class LiveClassifier:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    @classmethod
    def rules_only(cls, rules_dir: Path = RULES_DIR) -> LiveClassifier:
        from classifiers.hot_reload import rules_hash

        return cls(Snapshot(RuleClassifier(rules_dir), rules_hash(rules_dir), None, None))

    @property
    def active_version(self) -> str | None:
        return self.snapshot.active.version if self.snapshot.active else None

    @property
    def shadow_version(self) -> str | None:
        return self.snapshot.shadow.version if self.snapshot.shadow else None

    def classify_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        """combine.py's interface (`intake classify`, `evaluate`), reading the channel as it does."""
        return self.classify([Request(m.text, m.lang, m.channel in PUBLIC_CHANNELS,
                                      conversation=m.channel in CONVERSATION_CHANNELS) for m in messages])[0]

    def classify(self, requests: list[Request]) -> tuple[list[dict[str, Any]], list[Disagreement]]:
        """One combined answer per request, and the shadow version's disagreements with them."""
        snap = self.snapshot  # one set for the whole batch, whatever a reload does meanwhile
        if not requests:
            return [], []
        messages = [Message(r.text, r.lang) for r in requests]
        ruled = [snap.rules.classify(r.text, r.lang, public=r.public, vip=r.vip, conversation=r.conversation)
                 for r in requests]
        answers = _combiner(snap, snap.active).combine(messages, ruled)
        if snap.shadow is None:
            return answers, []
        candidates = _combiner(snap, snap.shadow).combine(messages, ruled)
        active_name = snap.active.version if snap.active else None
        disagreements = [d for r, a, c in zip(requests, answers, candidates, strict=True)
                         if (d := compare(r.key, a, c, active_name, snap.shadow.version, snap.shadow.task))]
        return answers, disagreements
