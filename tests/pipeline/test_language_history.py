"""The language history of customers and channel accounts (SQLite store), and the stage that uses it."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import event

from pipeline.envelope import Envelope, utcnow
from pipeline.stages import WorkItem
from pipeline.stages.language import LanguageStage
from pipeline.store.language_history import LanguageHistory, combine

GERMAN = ["Meine Bestellung ist noch nicht angekommen", "Ich möchte mein Geld zurück",
          "Die Lieferung war leider beschädigt"]
PORTUGUESE = ["Meu pedido ainda não chegou", "Quero o meu dinheiro de volta", "A entrega chegou danificada"]


def fill_history(processor, record) -> None:
    """bob wrote German, carla Portuguese, both to the chat account; dora Portuguese to a mailbox."""
    now = utcnow()
    batch = []
    for i, (de, pt) in enumerate(zip(GERMAN, PORTUGUESE, strict=True)):
        at = (now - timedelta(hours=3 - i)).isoformat()
        batch += [record(de, "bob", received_at=at), record(pt, "carla", received_at=at),
                  record(pt, "dora", received_at=at, channel="email", account="support@shop.example",
                         sender={"kind": "email", "id": "dora@example.com"})]
    result = processor.process(batch)
    assert result.stored == 9 and not result.dead_letters


def envelope(record, text: str, customer: str, **overrides) -> Envelope:
    return Envelope.model_validate_json(record(text, customer, **overrides).payload)


def count_queries(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *args: seen.append(statement))
    return seen


def check_customer_and_channel_priors(engine, processor, record) -> None:
    fill_history(processor, record)
    history = LanguageHistory(engine)
    queries = count_queries(engine)
    bob, carla, newcomer = (envelope(record, "ok", name) for name in ("bob", "carla", "erin"))
    mailbox_newcomer = envelope(record, "ok", "x", channel="email", account="support@shop.example",
                                sender={"kind": "email", "id": "frank@example.com"})
    priors = history.priors([bob, carla, newcomer, mailbox_newcomer])
    assert len([q for q in queries if "customer_identities" in q]) == 1  # one query for the whole batch
    assert max(priors[0], key=priors[0].get) == "de"
    assert max(priors[1], key=priors[1].get) == "pt"
    assert priors[2] == pytest.approx({"de": 0.125, "pt": 0.125})  # the chat account's mix only, weighted 0.25
    assert priors[3] == pytest.approx({"pt": 0.25})
    history.priors([bob])
    assert len([q for q in queries if "ORDER BY messages.id DESC" in q]) == 1  # the channel mix is cached


def test_customer_and_channel_priors(engine, processor, record):
    check_customer_and_channel_priors(engine, processor, record)


def test_the_stage_lets_the_history_tip_short_lines_only(engine, processor, record, language_detector):
    fill_history(processor, record)
    stage = LanguageStage(language_detector, LanguageHistory(engine))
    items = [WorkItem(envelope(record, text, name), classify_text=text)
             for name, text in [("bob", "ok"), ("carla", "ok"), ("erin", "ok"),
                                ("bob", "Where is my parcel, it is two weeks late"), ("carla", "da")]]
    queries = count_queries(engine)
    stage.prepare(items)
    for item in items:
        stage(item)
    # erin is new: the chat account's mix (half de, half pt, weighted 0.25) tips "ok" less surely than bob's own
    assert [i.language.lang for i in items] == ["de", "pt", "de", "en", "pt"]
    assert items[0].language.method.endswith("+prior")
    assert items[2].language.confidence < items[0].language.confidence
    assert items[3].language == language_detector.detect(items[3].classify_text)
    assert len([q for q in queries if "customer_identities" in q]) == 1


def test_the_stage_without_prepare_asks_per_message(engine, processor, record, language_detector):
    fill_history(processor, record)
    stage = LanguageStage(language_detector, LanguageHistory(engine))
    item = WorkItem(envelope(record, "ok", "bob"), classify_text="ok")
    stage(item)
    assert item.language.lang == "de"


def test_a_channel_hint_still_wins_and_asks_nothing(engine, record, language_detector):
    stage = LanguageStage(language_detector, LanguageHistory(engine))
    items = [WorkItem(envelope(record, "ok", "bob", language_hint="fr-FR"), classify_text="ok")]
    queries = count_queries(engine)
    stage.prepare(items)
    stage(items[0])
    assert items[0].language.lang == "fr" and not queries


def test_old_unsure_and_undetermined_messages_do_not_count(engine, processor, record):
    old = (utcnow() - timedelta(days=400)).isoformat()
    processor.process([record(GERMAN[0], "gil", received_at=old), record("👍", "gil"), record("ok", "gil")])
    assert LanguageHistory(engine, channel_messages=0).priors([envelope(record, "ok", "gil")]) == [None]


def test_a_store_that_cannot_answer_gives_no_prior(record, tmp_path, language_detector):
    from pipeline.store.database import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/not-migrated.db")  # no tables
    stage = LanguageStage(language_detector, LanguageHistory(broken))
    item = WorkItem(envelope(record, "Where is my parcel?", "bob"), classify_text="Where is my parcel?")
    stage.prepare([item])
    stage(item)
    assert item.language.lang == "en"
    broken.dispose()


def test_combine_weighs_the_customer_above_the_channel():
    from collections import Counter

    assert combine(Counter(de=3, en=1), Counter(en=10), 0.25) == pytest.approx({"de": 0.75, "en": 0.5})
    assert combine(None, None, 0.25) is None
    assert combine(Counter(), Counter(pt=2), 0.0) is None


def test_history_priors_are_json_safe(engine, processor, record):
    fill_history(processor, record)
    [prior] = LanguageHistory(engine).priors([envelope(record, "ok", "bob")])
    assert json.loads(json.dumps(prior)) == prior
