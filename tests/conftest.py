"""Shared fixtures: factories for envelopes and a migrated SQLite store per test."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from classifiers.language import LanguageDetector
from classifiers.rules import RuleClassifier
from pipeline.config import Settings, StoreConfig
from pipeline.processor import Processor, RawRecord
from pipeline.store.database import make_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "samples"
_ids = itertools.count(1)


@pytest.fixture
def envelope_dict() -> Callable[..., dict[str, Any]]:
    """Factory: a valid envelope as a dict; keyword arguments override fields."""

    def make(text: str = "My order arrived broken", customer: str = "alice", **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "channel": "chat", "account": "telegram:@shop", "message_id": f"m{next(_ids)}",
            "conversation_id": f"chat-{customer}",
            "sender": {"kind": "telegram_user", "id": customer, "name": customer.title()},
            "received_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC).isoformat(), "text": text,
        }
        body.update(overrides)
        return body

    return make


@pytest.fixture
def record(envelope_dict: Callable[..., dict[str, Any]]) -> Callable[..., RawRecord]:
    def make(text: str = "My order arrived broken", customer: str = "alice", **overrides: Any) -> RawRecord:
        body = envelope_dict(text, customer, **overrides)
        return RawRecord(json.dumps(body).encode(), f"test/{body['message_id']}")

    return make


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/store.db"
    upgrade(url)
    return url


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(store=StoreConfig(url=sqlite_url))


@pytest.fixture
def engine(sqlite_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def rule_classifier() -> RuleClassifier:
    return RuleClassifier()


@pytest.fixture(scope="session")
def language_detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.fixture
def processor(settings: Settings, engine, rule_classifier, language_detector) -> Processor:  # type: ignore[no-untyped-def]
    return Processor(settings, engine, language_detector, rule_classifier)


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent (a user's clone)")
