"""From-address verification from Authentication-Results (connectors/email_auth.py via parse_email)."""

from connectors.email_auth import verified_sender
from connectors.email_mime import parse_email

TRUSTED = ("mx.shop.example",)
BODY = b"\r\nMy order 48213 has not arrived.\r\n"


def mail(*auth_results: str, sender: str = "Ann Lee <ann@customer.example>") -> bytes:
    lines = [f"Authentication-Results: {a}" for a in auth_results]
    lines += ["Received: from mail-wr1.customer.example (mail-wr1.customer.example [203.0.113.7])",
              "\tby mx.shop.example (Postfix) with ESMTPS id 4QxYz1; Thu, 26 Nov 2026 10:00:01 +0000",
              f"From: {sender}", "To: support@shop.example", "Subject: where is my order",
              "Message-ID: <CAF1x@mail.customer.example>", "Date: Thu, 26 Nov 2026 10:00:00 +0000",
              "DKIM-Signature: v=1; a=rsa-sha256; d=customer.example; s=s1; h=from:subject; bh=abc=; b=def="]
    return "\r\n".join(lines).encode() + b"\r\n" + BODY


OURS_DMARC = ("mx.shop.example;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=customer.example "
              "header.i=@customer.example header.s=s1 header.b=Abc12;\r\n\tspf=pass (mx.shop.example: domain of "
              "ann@customer.example designates 203.0.113.7 as permitted sender) smtp.mailfrom=ann@customer.example;"
              "\r\n\tdmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=customer.example")


def test_dmarc_pass_from_our_server_verifies_the_from_address():
    env = parse_email(mail(OURS_DMARC), "support", trusted_authserv_ids=TRUSTED)
    assert env.metadata["verified_email"] == "ann@customer.example"
    assert env.metadata["verified_email_by"] == "dmarc=pass header.from=customer.example by mx.shop.example"


def test_nothing_is_verified_unless_a_server_is_trusted():
    assert "verified_email" not in parse_email(mail(OURS_DMARC), "support").metadata


def test_forged_header_from_an_untrusted_authserv_id_does_not_count():
    forged = "mx.evil.example; dkim=pass header.d=customer.example; dmarc=pass header.from=customer.example"
    ours = ("mx.shop.example; dkim=none; spf=softfail smtp.mailfrom=evil.example; "
            "dmarc=fail header.from=customer.example")
    assert "verified_email" not in parse_email(mail(forged), "support", trusted_authserv_ids=TRUSTED).metadata
    assert "verified_email" not in parse_email(mail(ours, forged), "support", trusted_authserv_ids=TRUSTED).metadata


def test_only_the_topmost_trusted_header_counts():
    below = "mx.shop.example; dmarc=pass header.from=customer.example"  # written into the mail by its sender
    ours = "mx.shop.example 1; dkim=fail header.d=customer.example; dmarc=fail header.from=customer.example"
    assert "verified_email" not in parse_email(mail(ours, below), "support", trusted_authserv_ids=TRUSTED).metadata


def test_dkim_pass_counts_only_when_aligned_with_the_from_domain():
    aligned = "MX.SHOP.EXAMPLE; dkim=pass header.d=customer.example header.s=s1"
    parent = "mx.shop.example; dkim=pass header.i=@customer.example"
    other = "mx.shop.example; dkim=pass header.d=mailer-service.example; spf=pass smtp.mailfrom=mailer-service.example"
    sub = "Ann <ann@eu.customer.example>"
    assert parse_email(mail(aligned), "s", trusted_authserv_ids=TRUSTED).metadata["verified_email"] == (
        "ann@customer.example")
    assert parse_email(mail(parent, sender=sub), "s", trusted_authserv_ids=TRUSTED).metadata["verified_email"] == (
        "ann@eu.customer.example")
    assert "verified_email" not in parse_email(mail(other), "s", trusted_authserv_ids=TRUSTED).metadata


def test_dmarc_for_another_domain_or_a_failure_beside_a_signature_does_not_count():
    other_domain = "mx.shop.example; dmarc=pass header.from=mailer-service.example"
    failed = "mx.shop.example; dkim=pass header.d=customer.example; dmarc=fail header.from=customer.example"
    for header in (other_domain, failed):
        assert "verified_email" not in parse_email(mail(header), "s", trusted_authserv_ids=TRUSTED).metadata


def test_comments_and_quoted_strings_cannot_smuggle_a_result():
    tricky = ('mx.shop.example; dkim=fail reason="dkim=pass header.d=customer.example" '
              "(dmarc=pass header.from=customer.example) header.d=customer.example")
    assert verified_sender("ann@customer.example", [tricky], TRUSTED) is None


def test_several_from_addresses_or_none_verify_nothing():
    assert verified_sender("ann@customer.example, bob@customer.example", [OURS_DMARC], TRUSTED) is None
    assert verified_sender("", [OURS_DMARC], TRUSTED) is None
    assert verified_sender("ann@customer.example", [], TRUSTED) is None
