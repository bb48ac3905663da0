"""Classify type, complaint category and urgency: rules plus the active model, a whole batch per
call (repeat contacts join later in the ticket stage, which knows the customer).

Shadow disagreements found here wait in `pending` until the processor stores them with the batch.
"""

from __future__ import annotations

from classifiers.combine import CONVERSATION_CHANNELS
from classifiers.live import LiveClassifier, Request, labels_of
from classifiers.shadow import Disagreement
from pipeline.stages import WorkItem


class ClassifyStage:
    name = "classify"

    def __init__(self, classifier: LiveClassifier, vip_senders: frozenset[str] = frozenset()) -> None:
        self.classifier = classifier
        self.vip_senders = vip_senders
        self.pending: list[Disagreement] = []

    def __call__(self, item: WorkItem) -> None:
        self.run_batch([item])

    def run_batch(self, items: list[WorkItem]) -> None:
        requests = []
        for item in items:
            assert item.language is not None, "language stage runs first"
            env = item.envelope
            text = f"{env.subject}\n{item.classify_text}" if env.subject else item.classify_text
            requests.append(Request(text, item.language.lang, env.public, env.sender.key in self.vip_senders,
                                    env.delivery_key, env.channel in CONVERSATION_CHANNELS))
        answers, disagreements = self.classifier.classify(requests)
        for item, answer in zip(items, answers, strict=True):
            item.labels = labels_of(answer)
        self.pending.extend(disagreements)

    def take_disagreements(self, keys: set[str]) -> list[Disagreement]:
        """The pending disagreements of messages in `keys` (the batch's survivors); clears the rest."""
        taken = [d for d in self.pending if d.delivery_key in keys]
        self.pending = []
        return taken
