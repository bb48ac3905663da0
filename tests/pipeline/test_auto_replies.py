"""Auto-replies, bounces and loops are recorded but never open, reopen or change a ticket; a person's
reply still does. Mails are built here, parsed by the real email parser, and stored on SQLite."""

from email.message import EmailMessage

from sqlalchemy import func, select, update

from connectors.email_mime import parse_email
from pipeline.processor import RawRecord
from pipeline.store.schema import messages, ticket_events, tickets

CUSTOMER = "Ann Lee <ann@example.com>"


def mail(subject, body, sender=CUSTOMER, msgid="<c1@example.com>", reply_to=None, **headers):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "support@shop.example", subject, msgid
    msg["Date"] = "Mon, 16 Nov 2026 08:42:00 +0000"
    if reply_to:
        msg["In-Reply-To"], msg["References"] = reply_to, reply_to
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def bounce(subject, refs, msgid="<b1@mx.example>"):
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: support@shop.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: {msgid}\r\nReferences: {refs}\r\n"
            "Date: Mon, 16 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nA message could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
            "Final-Recipient: rfc822; ann@example.com\r\nStatus: 5.1.1\r\n--b--\r\n").encode()


def record(raw):
    env = parse_email(raw, "support@shop.example", "file:///raw.eml")
    return RawRecord(env.model_dump_json().encode(), "test")


def one_ticket(engine):
    with engine.connect() as conn:
        return conn.execute(select(tickets)).mappings().one()


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(select(messages.c.dedup_outcome, messages.c.ticket_id, messages.c.dedup_reason)
                            .order_by(messages.c.id)).all()


def events(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ticket_events)).scalar()


def test_out_of_office_reply_to_an_open_ticket_leaves_it_as_it_was(processor, engine):
    processor.process([record(mail("Charged twice for order 48213", "I was charged twice, refund me now!"))])
    before = one_ticket(engine)
    ooo = mail(f"Automatic reply: Re: [{before['number']}] Charged twice", "I am out of the office until Monday.",
               msgid="<ooo@example.com>", Auto_Submitted="auto-replied")
    result = processor.process([record(ooo)])
    assert (result.stored, result.tickets_created, result.events) == (1, 0, 0)
    after = one_ticket(engine)
    assert {k: after[k] for k in ("status", "message_count", "updated_at", "urgency", "sla_due_at")} == {
        k: before[k] for k in ("status", "message_count", "updated_at", "urgency", "sla_due_at")}
    outcome, ticket_id, reason = stored(engine)[-1]
    assert (outcome, ticket_id) == ("auto_reply", before["id"])
    assert "Auto-Submitted" in reason and "unchanged" in reason
    assert events(engine) == 1  # only ticket.created


def test_out_of_office_reply_to_a_closed_ticket_does_not_reopen_it(processor, engine):
    processor.process([record(mail("Where is my parcel?", "Parcel 5531 is late."))])
    with engine.begin() as conn:
        conn.execute(update(tickets).values(status="closed"))
    result = processor.process([record(mail("Out of Office: Re: Where is my parcel?", "Away until 1 December.",
                                            msgid="<ooo2@example.com>", reply_to="<c1@example.com>"))])
    assert (result.stored, result.tickets_created) == (1, 0)
    assert one_ticket(engine)["status"] == "closed"
    assert stored(engine)[-1][:2] == ("auto_reply", None)


def test_a_bounce_with_no_ticket_opens_none(processor, engine):
    result = processor.process([record(bounce("Undelivered Mail Returned to Sender", "<nowhere@example.com>"))])
    assert (result.stored, result.tickets_created, result.events) == (1, 0, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 0
    outcome, ticket_id, reason = stored(engine)[0]
    assert (outcome, ticket_id) == ("auto_reply", None) and "bounce" in reason and "none opened" in reason


def test_a_bounce_naming_our_ticket_joins_it_unchanged_though_another_sender_sent_it(processor, engine):
    processor.process([record(mail("Broken charger", "The charger caught fire!"))])
    before = one_ticket(engine)
    result = processor.process([record(bounce(f"Undeliverable: Re: [{before['number']}] Broken charger",
                                              "<c1@example.com>"))])
    assert (result.stored, result.tickets_created) == (1, 0)
    assert stored(engine)[-1][:2] == ("auto_reply", before["id"])
    assert one_ticket(engine)["message_count"] == before["message_count"]


def test_a_person_replying_still_joins_and_after_closing_opens_a_ticket(processor, engine):
    processor.process([record(mail("Broken charger", "The charger caught fire!"))])
    reply = mail("Re: Broken charger", "Any news? It is urgent.\n\nOn Mon, Shop <s@shop> wrote:\n> We are on it",
                 msgid="<c2@example.com>", reply_to="<c1@example.com>")
    result = processor.process([record(reply)])
    assert (result.stored, result.tickets_created) == (1, 0)
    assert one_ticket(engine)["message_count"] == 2 and stored(engine)[-1][0] == "thread"
    with engine.begin() as conn:
        conn.execute(update(tickets).values(status="closed"))
    again = mail("Re: Broken charger", "It broke again.", msgid="<c3@example.com>", reply_to="<c2@example.com>")
    assert processor.process([record(again)]).tickets_created == 1


def test_in_one_batch_an_auto_reply_first_does_not_take_the_customers_new_ticket_slot(processor, engine):
    loop = mail("Re: your request", "ticket acknowledgement", msgid="<l1@example.com>", X_Omnintake_Loop="shop")
    fresh = mail("Refund please", "Refund order 77 please.", msgid="<c9@example.com>")
    result = processor.process([record(loop), record(fresh)])
    assert (result.stored, result.tickets_created) == (2, 1)
    assert [row[0] for row in stored(engine)] == ["auto_reply", "new"]
    assert stored(engine)[0][1] is None
