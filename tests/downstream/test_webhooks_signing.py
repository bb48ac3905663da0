"""Webhook signatures: what a receiver checks, including replay and rotation."""

import pytest

from downstream.webhooks.signing import SignatureError, compute_signature, new_secret, signature_header, verify

BODY = b'{"event_id":"e1","type":"ticket.created"}'
SECRET = "whsec_test_secret_0123456789"


def test_a_signed_body_verifies_and_returns_its_timestamp():
    header = signature_header(SECRET, 1_800_000_000, BODY)
    assert verify(SECRET, header, BODY, now=1_800_000_010) == 1_800_000_000


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, 1_800_000_000, BODY) == expected
    assert signature_header(SECRET, 1_800_000_000, BODY) == f"t=1800000000,v1={expected}"


@pytest.mark.parametrize("change", ["body", "secret", "timestamp"])
def test_any_change_breaks_the_signature(change):
    header = signature_header(SECRET, 1_800_000_000, BODY)
    body, secret = BODY, SECRET
    if change == "body":
        body = BODY.replace(b"created", b"deleted")
    elif change == "secret":
        secret = SECRET + "x"
    else:
        header = header.replace("t=1800000000", "t=1800000001")
    with pytest.raises(SignatureError):
        verify(secret, header, body, now=1_800_000_000)


def test_an_old_request_is_refused_as_a_replay():
    header = signature_header(SECRET, 1_800_000_000, BODY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, header, BODY, now=1_800_000_000 + 301)
    assert verify(SECRET, header, BODY, tolerance_s=600, now=1_800_000_000 + 301)


@pytest.mark.parametrize("header", ["", "t=1800000000", "v1=abc", "t=soon,v1=abc", "garbage"])
def test_malformed_headers_are_refused(header):
    with pytest.raises(SignatureError):
        verify(SECRET, header, BODY, now=1_800_000_000)


def test_during_rotation_any_listed_signature_is_enough():
    old = compute_signature("whsec_old_secret_000000", 1_800_000_000, BODY)
    new = compute_signature(SECRET, 1_800_000_000, BODY)
    assert verify(SECRET, f"t=1800000000,v1={old},v1={new}", BODY, now=1_800_000_000)


def test_generated_secrets_are_long_and_distinct():
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40


def test_the_receiver_snippet_in_the_docs_verifies_our_signatures():
    import re
    import time
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)# in the handler:", doc, re.S).group(1)
    namespace: dict = {}
    exec(snippet, namespace)
    now = int(time.time())
    namespace["verify"](SECRET, signature_header(SECRET, now, BODY), BODY)
    with pytest.raises(ValueError, match="bad signature"):
        namespace["verify"](SECRET, signature_header(SECRET, now, BODY), BODY + b" ")
    with pytest.raises(ValueError, match="replay"):
        namespace["verify"](SECRET, signature_header(SECRET, now - 600, BODY), BODY)
