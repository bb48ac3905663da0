from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.base import InputError
from connectors.email_mime import html_to_text, new_text, parse_email
from tests.conftest import SAMPLES, SHARED_DATA, needs_shared_data

SAMPLE_EMAILS = sorted((SAMPLES / "email").glob("*.eml"))


@pytest.mark.parametrize("path", SAMPLE_EMAILS, ids=lambda p: p.name)
def test_every_sample_email_parses_without_replacement_characters(path):
    env = parse_email(path.read_bytes(), "support@shop.example", path.as_uri())
    assert env.channel == "email" and "@" in env.sender.id
    assert env.text.strip()
    assert "\ufffd" not in env.text + (env.subject or "")
    assert "mojibake" not in env.metadata


@pytest.mark.parametrize("charset, text", [
    ("koi8-r", "Мой аккаунт взломали"), ("windows-1251", "Верните деньги"), ("gb2312", "商品与宣传严重不符"),
    ("big5", "請儘快處理"), ("iso-8859-7", "Τρίτη φορά χωρίς απάντηση"), ("windows-1258", "Cam on"),
    ("utf-16", "Đơn hàng bị thất lạc"), ("iso-2022-jp", "注文が届きません"),
])
def test_legacy_charsets_decode(charset, text):
    msg = EmailMessage()
    msg["From"] = "Client <client@example.com>"
    msg["Subject"] = "test"
    msg["Message-ID"] = "<x@example.com>"
    msg.set_content(text, charset=charset) if charset != "utf-16" else msg.set_content(
        text.encode("utf-16"), maintype="text", subtype="plain", params={"charset": "utf-16"})
    env = parse_email(msg.as_bytes(), "box")
    assert text in env.text


def test_undeclared_8bit_header_is_decoded_as_the_body_charset():
    raw = ("From: Иван <ivan@example.ru>\nSubject: Жалоба на доставку\nMessage-ID: <q@x>\n"
           "Content-Type: text/plain; charset=windows-1251\n\nтекст\n").encode("cp1251")
    env = parse_email(raw, "box")
    assert env.subject == "Жалоба на доставку"
    assert env.sender.name == "Иван"


def test_reply_quotes_are_kept_but_not_classified():
    body = "Still waiting!\n\nOn Mon, 16 Nov 2026, Shop <s@shop> wrote:\n> We are looking into it\n"
    assert new_text(body) == "Still waiting!"


def test_html_to_text_drops_scripts_and_keeps_text():
    assert html_to_text("<p>Hello<script>alert(1)</script></p><div>World &amp; co</div>").split() == [
        "Hello", "World", "&", "co"]


def test_mail_without_from_is_kept_under_its_own_identity():
    env = parse_email(b"Subject: hi\nMessage-ID: <lonely@x>\n\nbody\n", "box")
    assert env.sender.kind == "unknown" and "lonely" in env.sender.id


@needs_shared_data()
def test_real_world_mail_parses():
    files = [p for p in (SHARED_DATA / "email").rglob("*") if p.is_file() and p.stat().st_size > 10]
    failures = []
    for path in files:
        try:
            env = parse_email(path.read_bytes(), "box", path.as_uri())
        except InputError as exc:
            assert str(exc).startswith("not "), exc  # refused only as "not an email", with the reason
            continue
        except Exception as exc:
            failures.append(f"{Path(path).name}: {exc!r}")
            continue
        if "\ufffd" in env.text:  # only where bytes are undecodable, and then it says so
            assert "undecodable" in env.metadata.get("defects", "") + env.metadata.get("charset_notes", "")
    assert not failures
    assert len(files) > 100
