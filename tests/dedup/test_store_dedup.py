"""Dedup layers and cross-channel identity through the real processor and store (SQLite)."""

import json
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from pipeline.dedup.evaluate import evaluate
from pipeline.dedup.sketch import band_keys, sketch
from pipeline.dedup.testset import generated_pairs, hand_pairs
from pipeline.envelope import utcnow
from pipeline.identity import IdentityError, merge, unmerge
from pipeline.store.schema import (
    customer_identities,
    customer_merges,
    identity_suggestions,
    messages,
    ticket_events,
    tickets,
)
from tests.conftest import SHARED_DATA, needs_shared_data

COMPLAINT = "My order 48213 arrived with a cracked screen and the box was crushed, I want a refund now."
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def rows(engine, table, *order):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(*(order or [table.c.id]))).mappings()]


def phone_call(record, text, number="+15550001111", hours=0.0, call="call-1"):
    return record(text, "x", channel="phone", account="hotline", message_id=call, conversation_id=call,
                  sender={"kind": "phone", "id": number}, received_at=at(hours))


def test_schema_and_migrations_agree(engine):
    from pipeline.store.all_tables import metadata as every_table

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), every_table) == []


def test_a_near_duplicate_joins_the_ticket_as_a_repeat(processor, engine, record):
    processor.process([record(COMPLAINT, "ann", received_at=at(0))])
    processor.process([record(COMPLAINT.upper().replace(",", "") + "!!!", "ann", received_at=at(3),
                              conversation_id="other-chat")])
    [ticket] = rows(engine, tickets)
    second = rows(engine, messages)[-1]
    assert (ticket["message_count"], ticket["repeat_count"]) == (2, 1)
    assert second["dedup_outcome"] == "near_duplicate" and second["dedup_score"] >= 0.9
    assert "jaccard" in second["dedup_reason"]


def test_outside_the_window_or_another_order_is_no_repeat(processor, engine, record):
    processor.process([record(COMPLAINT, "bo", received_at=at(0))])
    processor.process([record(COMPLAINT.replace("48213", "50017"), "bo", received_at=at(1), conversation_id="c2")])
    processor.process([record(COMPLAINT, "bo", received_at=at(30), conversation_id="c3")])
    [ticket] = rows(engine, tickets)
    assert ticket["repeat_count"] == 0
    assert [m["dedup_outcome"] for m in rows(engine, messages)] == ["new", "open_ticket", "open_ticket"]


def test_a_chat_conversation_continues_its_ticket(processor, engine, record):
    processor.process([record("Hello, my parcel is late", "cy", received_at=at(0))])
    processor.process([record("it was due on Monday", "cy", received_at=at(0.2))])
    assert [m["dedup_outcome"] for m in rows(engine, messages)] == ["new", "thread"]


def test_same_complaint_by_phone_then_telegram_with_shared_phone_is_one_customer(processor, engine, record):
    processor.process([phone_call(record, COMPLAINT)])
    shared = record(COMPLAINT.lower(), "tg-77", received_at=at(2),
                    metadata={"phone": "+15550001111", "phone_owner": "sender", "contact_name": "Ann"})
    processor.process([shared])
    [ticket] = rows(engine, tickets)
    assert (ticket["message_count"], ticket["repeat_count"]) == (2, 1)
    assert rows(engine, messages)[-1]["dedup_outcome"] in ("content_duplicate", "near_duplicate")
    idents = {(i["kind"], i["value"]): i["customer_id"] for i in rows(engine, customer_identities)}
    assert idents[("phone", "+15550001111")] == idents[("telegram_user", "tg-77")]
    [done] = rows(engine, customer_merges)
    assert done["automatic"] and "+15550001111" in done["reason"]


def test_someone_elses_phone_links_nothing(processor, engine, record):
    processor.process([phone_call(record, COMPLAINT)])
    processor.process([record("here is my friend's number", "tg-9", received_at=at(1),
                              metadata={"phone": "+15550001111", "phone_owner": "other"})])
    assert len(rows(engine, tickets)) == 2 and rows(engine, customer_merges) == []


def test_merge_keeps_the_older_ticket_and_unmerge_restores_both(processor, engine, record):
    processor.process([record(COMPLAINT, "old", received_at=at(0))])
    processor.process([record("The app logs me out every five minutes on Android", "new", received_at=at(1)),
                       record("and the settings page is blank", "new", received_at=at(1.1))])
    before = {t["id"]: t for t in rows(engine, tickets)}
    old_t, new_t = sorted(before)
    cust_old, cust_new = before[old_t]["customer_id"], before[new_t]["customer_id"]
    with engine.begin() as conn:
        done = merge(conn, cust_new, cust_old, utcnow(), "operator")
    assert (done.kept_ticket, done.merged_ticket) == (old_t, new_t)
    after = {t["id"]: t for t in rows(engine, tickets)}
    assert after[new_t]["status"] == "merged" and after[old_t]["message_count"] == 3
    assert after[old_t]["repeat_count"] == 1 and after[new_t]["customer_id"] == cust_old
    assert {m["ticket_id"] for m in rows(engine, messages)} == {old_t}
    with engine.begin() as conn:
        try:
            merge(conn, cust_new, cust_old, utcnow(), "again")
            raise AssertionError("a merged customer merged twice")
        except IdentityError as exc:
            assert "already merged" in str(exc)
    with engine.begin() as conn:
        unmerge(conn, done.merge_id, utcnow())
    restored = {t["id"]: t for t in rows(engine, tickets)}
    for tid in before:
        for key in ("status", "customer_id", "message_count", "repeat_count", "urgency", "sla_due_at"):
            assert restored[tid][key] == before[tid][key], (tid, key)
    assert [m["ticket_id"] for m in rows(engine, messages)] == [old_t, new_t, new_t]
    events = [(e["type"], e["ticket_id"], e["payload"]["changes"].get("status"), e["payload"]["merge"]["merge_id"])
              for e in rows(engine, ticket_events) if e["type"] in ("ticket.merged", "ticket.unmerged")]
    assert events == [("ticket.merged", old_t, None, done.merge_id),
                      ("ticket.merged", new_t, ["open", "merged"], done.merge_id),
                      ("ticket.unmerged", old_t, None, done.merge_id),
                      ("ticket.unmerged", new_t, ["merged", "open"], done.merge_id)]
    # after the un-merge each customer's messages find their own ticket again
    processor.process([record("one more thing about the app", "new", received_at=at(2))])
    assert rows(engine, messages)[-1]["ticket_id"] == new_t


def test_same_long_complaint_from_two_identities_is_suggested_not_merged(processor, engine, record):
    text = ("I ordered the blue kettle last week and it arrived with a cracked lid, the handle is loose "
            "and it leaks on the counter every time I boil water")
    processor.process([record(text, "mail-person", received_at=at(0))])
    processor.process([record(text + " please help", "chat-person", received_at=at(2))])
    assert len(rows(engine, tickets)) == 2
    [s] = rows(engine, identity_suggestions)
    assert s["status"] == "open" and s["score"] >= 0.8 and "nearly the same text" in s["reason"]


def test_several_processes_see_each_others_sketches(settings, engine, record, rule_classifier, language_detector):
    from pipeline.processor import Processor

    one = Processor(settings, engine, language_detector, rule_classifier)
    two = Processor(settings, engine, language_detector, rule_classifier)
    one.process([record(COMPLAINT, "dee", received_at=at(0))])
    two.process([record(COMPLAINT + " Thanks.", "dee", received_at=at(1), conversation_id="c9")])
    assert rows(engine, tickets)[0]["repeat_count"] == 1


def test_hand_written_pairs_meet_the_targets():
    score = evaluate(hand_pairs())
    assert score.precision >= 0.98 and score.recall >= 0.95, score.misses


@needs_shared_data()
def test_generated_pairs_meet_the_targets():
    pairs = generated_pairs(SHARED_DATA, seed=11, per_source=40)
    assert len(pairs) > 200 and {p.kind for p in pairs} >= {"trimmed", "forwarded", "template_other_number"}
    score = evaluate(pairs)
    assert score.precision >= 0.98 and score.recall >= 0.95, score.misses[:5]


def test_evaluation_counts_what_it_finds():
    pairs = hand_pairs()[:3]
    score = evaluate([*pairs, pairs[0].__class__("resent", True, "x", "y")])  # an impossible positive
    assert score.fn >= 1 and score.misses[-1]["kind"] == "resent"
    json.dumps(score.misses)


def test_a_from_address_verified_by_our_server_becomes_a_verified_identity(processor, engine, record):
    def email(text, hours, message_id, **metadata):
        return record(text, "x", channel="email", account="support", message_id=message_id,
                      sender={"kind": "email", "id": "ann@customer.example"}, received_at=at(hours), metadata=metadata)

    processor.process([email(COMPLAINT, 0, "<m1@customer.example>")])
    assert [i["verified"] for i in rows(engine, customer_identities)] == [False]
    processor.process([email("any news?", 1, "<m2@customer.example>", verified_email="ann@customer.example")])
    [identity] = rows(engine, customer_identities)
    assert identity["verified"] and identity["value"] == "ann@customer.example"
    chat = record("still waiting", "tg-5", received_at=at(2), metadata={"verified_email": "ann@customer.example"})
    processor.process([chat])
    assert len({i["customer_id"] for i in rows(engine, customer_identities)}) == 1


def test_sketches_made_by_the_stage_worker_give_the_same_decisions(processor, engine, record):
    from pipeline.stages.dedup import SketchStage
    from pipeline.store.schema import dedup_bands, dedup_sketches

    processor.stages.append(SketchStage())  # as the stage worker runs it
    forwarded = "FYI\n\n---------- Forwarded message ---------\nFrom: ann@customer.example\n\n" + COMPLAINT
    processor.process([record(COMPLAINT, "ann", received_at=at(0))])
    processor.process([record(COMPLAINT.upper() + "!!", "ann", received_at=at(2), message_id="m2")])
    processor.process([record(forwarded, "ann", channel="email", message_id="<fw@customer.example>",
                              sender={"kind": "telegram_user", "id": "ann"}, received_at=at(3))])
    stored = rows(engine, messages)
    assert [m["dedup_outcome"] for m in stored] == ["new", "near_duplicate", "near_duplicate"]
    with engine.connect() as conn:
        raw = conn.execute(select(dedup_sketches.c.sketch).order_by(dedup_sketches.c.message_id)).scalars().all()
        bands = conn.execute(select(dedup_bands.c.band_key).where(dedup_bands.c.message_id == stored[0]["id"]))
        assert sorted(bands.scalars()) == sorted(set(band_keys(sketch(COMPLAINT))))
    assert raw[0] == sketch(COMPLAINT).to_bytes() and raw[2] == sketch(forwarded).to_bytes()
