"""Detect the message's language; a channel's own hint wins when it names a language."""

from __future__ import annotations

from classifiers.language import LanguageDetector, LanguageResult
from pipeline.stages import WorkItem


class LanguageStage:
    name = "language"

    def __init__(self, detector: LanguageDetector) -> None:
        self.detector = detector

    def __call__(self, item: WorkItem) -> None:
        hint = item.envelope.language_hint
        if hint:
            item.language = LanguageResult(hint.lower(), 1.0, "channel-hint")
            return
        subject = item.envelope.subject or ""
        text = item.classify_text
        if len(text) < 20 and subject:  # a short body says little; the subject helps
            text = f"{subject}\n{text}"
        item.language = self.detector.detect(text)
