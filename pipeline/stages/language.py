"""Detect the message's language; a channel's own hint wins when it names a language.

With a history (`pipeline.store.language_history.LanguageHistory`), the languages the customer and the
channel account wrote in before tip close calls ("ok", "da", a lone product name); clear text ignores them.
`prepare(items)` reads the history of a whole batch in one query; without it each message asks alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from classifiers.language import LanguageDetector, LanguageResult
from pipeline.envelope import Envelope
from pipeline.stages import WorkItem


class LanguagePriors(Protocol):
    def priors(self, envelopes: Sequence[Envelope]) -> Sequence[Mapping[str, float] | None]: ...


class LanguageStage:
    name = "language"

    def __init__(self, detector: LanguageDetector, history: LanguagePriors | None = None) -> None:
        self.detector = detector
        self.history = history
        self._prepared: dict[str, Mapping[str, float] | None] = {}

    def prepare(self, items: Sequence[WorkItem]) -> None:
        """Once per batch, before the items: every sender's history in one query."""
        self._prepared.clear()
        if self.history is None:
            return
        envelopes = [item.envelope for item in items if not item.envelope.language_hint]
        priors = self.history.priors(envelopes)
        self._prepared = {e.delivery_key: p for e, p in zip(envelopes, priors, strict=True)}

    def __call__(self, item: WorkItem) -> None:
        hint = item.envelope.language_hint
        if hint:
            item.language = LanguageResult(hint.lower(), 1.0, "channel-hint")
            return
        subject = item.envelope.subject or ""
        text = item.classify_text
        if len(text) < 20 and subject:  # a short body says little; the subject helps
            text = f"{subject}\n{text}"
        item.language = self.detector.detect(text, prior=self._prior(item.envelope))

    def _prior(self, envelope: Envelope) -> Mapping[str, float] | None:
        key = envelope.delivery_key
        if key in self._prepared:
            return self._prepared.pop(key)
        if self.history is None:
            return None
        return self.history.priors([envelope])[0]
