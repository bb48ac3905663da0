"""Classify type, complaint category and urgency with the rule baseline (repeat contacts and
VIP status join later in the ticket stage, which knows the customer)."""

from __future__ import annotations

from classifiers.rules import RuleClassifier
from pipeline.stages import WorkItem


class ClassifyStage:
    name = "classify"

    def __init__(self, classifier: RuleClassifier, vip_senders: frozenset[str] = frozenset()) -> None:
        self.classifier = classifier
        self.vip_senders = vip_senders

    def __call__(self, item: WorkItem) -> None:
        assert item.language is not None, "language stage runs first"
        env = item.envelope
        text = f"{env.subject}\n{item.classify_text}" if env.subject else item.classify_text
        item.labels = self.classifier.classify(
            text, item.language.lang, public=env.public, vip=env.sender.key in self.vip_senders)
