import base64
import hashlib
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
        except Exception as exc:  # every file with content is mail (one is an Outlook .msg): none refused
            failures.append(f"{Path(path).name}: {exc!r}")
            continue
        if "\ufffd" in env.text:  # only where bytes are undecodable, and then it says so
            assert "undecodable" in env.metadata.get("defects", "") + env.metadata.get("charset_notes", "")
    assert not failures
    assert len(files) > 100


# --- team-written samples: charsets -------------------------------------------------------------

def raw_mail(body: bytes, content_type: str = "text/plain; charset=utf-8", headers: str = "",
             cte: str = "8bit") -> bytes:
    head = (f"From: Client <client@example.com>\r\nTo: support@shop.example\r\nSubject: test\r\n"
            f"Message-ID: <t@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n{headers}\r\n").encode()
    return head + body


@pytest.mark.parametrize("declared, codec, text", [
    ("gb2312", "gb18030", "退款请求：商品与宣传严重不符，镕"),  # 镕 is GBK, not GB2312: mailers label it gb2312 anyway
    ("gbk", "gb18030", "您好，我的订单还没到"),
    ("gb18030", "gb18030", "快递丢件了€"),
    ("big5", "big5hkscs", "請儘快處理，謝謝。香港用字：嘅"),  # 嘅 needs HKSCS
    ("koi8-r", "koi8-r", "Мой аккаунт взломали, помогите"),
    ("koi8-u", "koi8-u", "Доброго дня, де моє замовлення? Ґанок"),
    ("windows-1251", "cp1251", "Верните деньги за заказ"),
    ("iso-8859-7", "iso-8859-7", "Τρίτη φορά χωρίς απάντηση"),
    ("windows-1258", "cp1258", "Đơn hàng"),
    ("utf-8", "utf-8", "Đơn hàng bị thất lạc, 快递, Привет, Γειά"),
])
def test_declared_charsets_decode_without_replacement(declared, codec, text):
    env = parse_email(raw_mail(text.encode(codec), f"text/plain; charset={declared}"), "box")
    assert text in env.text
    assert "\ufffd" not in env.text and "mojibake" not in env.metadata


def test_windows_1258_combining_tone_marks_become_precomposed():
    decomposed = b"\xd0\xf5n h\xe0ng bi\xf2 th\xe2\xect la\xf2c"  # tones as combining marks (0xF2, 0xEC)
    env = parse_email(raw_mail(decomposed, "text/plain; charset=windows-1258"), "box")
    assert env.text == "Đơn hàng bị thất lạc"  # NFC: one code point per letter


def test_iso_2022_jp_and_its_microsoft_variants():
    jis = "注文が届きません".encode("iso2022_jp")
    plain = parse_email(raw_mail(jis, "text/plain; charset=iso-2022-jp", cte="7bit"), "box")
    assert plain.text == "注文が届きません"
    # CP50220: NEC row 13 (①, ㈱) has no JIS X 0208 code, Python's iso2022 codecs refuse it
    nec = b"\x1b$B-!-j\x1b(B \x1b$BCmJ8\x1b(B"  # ① ㈱ 注文
    with pytest.raises(UnicodeDecodeError):
        nec.decode("iso2022_jp_ext")
    env = parse_email(raw_mail(nec, "text/plain; charset=iso-2022-jp", cte="7bit"), "box")
    assert env.text == "①㈱ 注文" and "\ufffd" not in env.text
    kana = b"\x1b(I6\x1b(B"  # CP50221 half-width katakana
    assert parse_email(raw_mail(kana, "text/plain; charset=iso-2022-jp", cte="7bit"), "box").text == "ｶ"


@pytest.mark.parametrize("data", [
    "\ufeffĐơn hàng bị thất lạc".encode("utf-16-le"), "\ufeffĐơn hàng".encode("utf-16-be"),
    "Đơn hàng bị thất lạc".encode("utf-16-le"), "Đơn hàng bị thất lạc".encode("utf-16-be"),
])
def test_utf16_with_and_without_bom(data):
    env = parse_email(raw_mail(data, "text/plain; charset=utf-16", cte="binary"), "box")
    assert env.text.startswith("Đơn hàng") and "\ufffd" not in env.text


def test_undeclared_8bit_body_and_headers_are_detected():
    text = "Здравствуйте! Мой заказ номер 5531 так и не пришёл, прошу вернуть деньги за него."
    raw = (b"From: \xc8\xe2\xe0\xed <ivan@example.ru>\r\nSubject: \xc6\xe0\xeb\xee\xe1\xe0\r\nMessage-ID: <u@x>\r\n\r\n"
           + text.encode("cp1251"))
    env = parse_email(raw, "box")
    assert env.text == text and env.subject == "Жалоба" and env.sender.name == "Иван"


def test_mislabelled_euc_jp_and_utf8_are_decoded_in_what_they_are():
    jp = "心当たりがあります。たぶん、この前と同じ問題です。"
    env = parse_email(raw_mail(jp.encode("euc_jp"), "text/plain; charset=iso-2022-jp"), "box")
    assert env.text == jp and "euc" in env.metadata["charset"]
    ru = "Профиль сообщения и контакты"
    env = parse_email(raw_mail(ru.encode(), "text/plain; charset=gb2312"), "box")
    assert env.text == ru and env.metadata["charset"] == "utf-8"


def test_mojibake_is_flagged_and_repaired_only_when_the_whole_text_round_trips():
    original = "Café crème, naïve façade — déjà vu"
    twice = original.encode("utf-8").decode("cp1252")  # what a misconfigured sender produces
    env = parse_email(raw_mail(twice.encode("utf-8")), "box")
    assert env.text == original and env.metadata["mojibake"].startswith("repaired")
    mixed = twice + " and a real ‘curly’ 快 character"  # 快 cannot be cp1252: no confident repair
    env = parse_email(raw_mail(mixed.encode("utf-8")), "box")
    assert env.text == mixed and env.metadata["mojibake"].startswith("suspect")
    utf8_as_latin1 = parse_email(raw_mail("Grüße aus München".encode(), "text/plain; charset=iso-8859-1"), "box")
    assert utf8_as_latin1.text == "Grüße aus München"
    cyr = parse_email(raw_mail("Верните деньги за разбитый телефон".encode("cp1251"),
                               "text/plain; charset=iso-8859-1"), "box")
    assert cyr.text == "Верните деньги за разбитый телефон" and "cp1251" in cyr.metadata["mojibake"]


# --- headers -------------------------------------------------------------------------------------

def test_rfc2047_words_including_broken_ones():
    split = "=?utf-8?B?" + "5b+r".rstrip("=") + "?= =?utf-8?B?6YCS?="  # 快 递, separate words
    cut = "=?utf-8?Q?=E5=BF?= =?utf-8?Q?=AB?="  # one character split across two words
    nopad = "=?utf-8?B?0J/RgNC40LLQtdGCIQ?="  # "Привет!" with its padding dropped
    raw = (f"From: =?koi8-r?B?6dfBzg==?= <ivan@example.ru>\r\nSubject: a {split} b {cut} c {nopad} d "
           "=?gb2312?B?zcu/7g==?= =?x-unknown?Q?caf=C3=A9?=\r\nMessage-ID: <h@x>\r\n\r\nbody").encode()
    env = parse_email(raw, "box")
    assert env.subject == "a 快递 b 快 c Привет! d 退款café"  # RFC 2047: no space between adjacent words
    assert env.sender.name == "Иван"


def test_rfc2231_filename_and_encoded_word_filename():
    raw = (b"From: a@example.com\r\nMessage-ID: <f@x>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
           b"--b\r\nContent-Type: application/pdf\r\n"
           b"Content-Disposition: attachment; filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
           b'--b\r\nContent-Type: image/png; name="=?utf-8?B?0YTQvtGC0L4ucG5n?="\r\n'
           b"Content-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--b--\r\n")
    env = parse_email(raw, "box")
    assert [a.filename for a in env.attachments] == ["发票.pdf", "фото.png"]
    assert env.attachments[0].size == 5 and len(env.attachments[0].sha256) == 64
    assert env.text == "see attached"


def test_threading_headers_and_our_ticket_number():
    raw = (b"From: a@example.com\r\nMessage-ID: <r2@x>\r\nIn-Reply-To: <r1@x>\r\nReferences: <r0@x> <r1@x>\r\n"
           b"Subject: Re: [OMN-000123] Broken charger\r\n\r\nStill broken")
    env = parse_email(raw, "box")
    assert (env.in_reply_to, env.references, env.conversation_id) == ("<r1@x>", ("<r0@x>", "<r1@x>"), "<r0@x>")
    assert env.metadata["ticket_number"] == "OMN-000123"


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)])
def test_input_that_is_not_an_email_is_refused_with_a_reason(raw):
    with pytest.raises(InputError, match="not an"):
        parse_email(raw, "box")


@pytest.mark.parametrize("raw", [b"\n", b"   \r\n\r\n"])
def test_a_blank_message_is_recorded_and_flagged_not_refused(raw):
    env = parse_email(raw, "box")
    assert env.text == "" and "EmptyMessage" in env.metadata["defects"]
    assert env.message_id.startswith("<sha256:") and env.sender.kind == "unknown"


def test_huge_header_is_cut_and_recorded():
    raw = b"From: a@example.com\r\nMessage-ID: <big@x>\r\nSubject: " + b"x" * 200_000 + b"\r\n\r\nhello"
    env = parse_email(raw, "box")
    assert env.text == "hello" and len(env.subject or "") <= 2000
    assert "header of 200000 characters" in env.metadata["defects"]


def test_empty_body_parses():
    env = parse_email(b"From: a@example.com\r\nSubject: (no text)\r\nMessage-ID: <e@x>\r\n\r\n", "box")
    assert env.text == "" and env.subject == "(no text)"


def test_missing_boundary_is_recovered_from_the_body():
    raw = (b"From: a@example.com\r\nMessage-ID: <m@x>\r\nContent-Type: multipart/mixed\r\n\r\n"
           b"--XyZ\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n" + "Где заказ?".encode("koi8-r") +
           b"\r\n--XyZ--\r\n")
    env = parse_email(raw, "box")
    assert env.text == "Где заказ?" and "boundary recovered" in env.metadata["defects"]


def test_truncated_base64_and_unknown_transfer_encoding_keep_what_is_readable():
    whole = base64.b64encode("Xin chào, đơn hàng của tôi bị hỏng.".encode()).decode()
    env = parse_email(raw_mail(whole[:-5].encode(), cte="base64"), "box")
    assert env.text.startswith("Xin chào, đơn hàng") and env.metadata.get("defects")
    env = parse_email(raw_mail(b"Zdravstvuyte, privet", cte="x-weird-encoding"), "box")
    assert env.text == "Zdravstvuyte, privet" and "unknown Content-Transfer-Encoding" in env.metadata["defects"]
    env = parse_email(raw_mail(b"This is plain text, not base64 at all!", cte="base64"), "box")
    assert env.text == "This is plain text, not base64 at all!"


def test_a_50_mb_attachment_is_recorded_over_the_limit_not_held():
    payload = base64.encodebytes(bytes(50 * 1024 * 1024))
    raw = (b"From: a@example.com\r\nMessage-ID: <z@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nvideo attached\r\n--b\r\nContent-Type: video/mp4; name=v.mp4\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"\r\n--b--\r\n")
    env = parse_email(raw, "box")
    (att,) = env.attachments
    assert att.filename == "v.mp4" and att.sha256 is None and att.size >= 50 * 1024 * 1024 * 0.99
    assert "v.mp4" in env.metadata["attachments_over_limit"]
    assert len(env.model_dump_json()) < 10_000  # the envelope holds the description only


def test_raw_bytes_stay_reachable():
    raw = b"From: a@example.com\r\nMessage-ID: <k@x>\r\n\r\nhello"
    env = parse_email(raw, "box", "imap://box/INBOX;UIDVALIDITY=7/;UID=42")
    assert env.raw_ref == "imap://box/INBOX;UIDVALIDITY=7/;UID=42"
    assert env.metadata["raw_sha256"] == hashlib.sha256(raw).hexdigest()


# --- HTML, quotes and signatures -----------------------------------------------------------------

def test_html_to_text_handles_entities_breaks_lists_tables_and_quotes():
    markup = ("<html><head><style>p{}</style><title>t</title></head><body><p>Hello&nbsp;&amp; welcome<br>line 2</p>"
              "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><table><tr><th>Item</th><th>Price</th></tr>"
              "<tr><td>Shoes</td><td>&euro;89</td></tr></table><script>x()</script><blockquote>old</blockquote></body>")
    assert html_to_text(markup).split("\n") == [
        "Hello & welcome", "line 2", "", "- one", "- two", "", "1. first", "", "Item | Price", "Shoes | €89", "",
        "> old"]


@pytest.mark.parametrize("reply, header", [
    ("Still waiting!", "On Mon, 16 Nov 2026 at 08:42, Shop <s@shop.example> wrote:"),
    ("Vẫn chưa nhận được hàng!", "Vào Th 2, 16 thg 11, 2026 vào lúc 08:42 Shop <s@shop.example> đã viết:"),
    ("还是没有收到货！", "在 2026年11月16日 08:42，Shop <s@shop.example> 写道："),
    ("Всё ещё жду!", "16 нояб. 2026 г., в 8:42, Shop <s@shop.example> написал(а):"),
    ("Ακόμα περιμένω!", "Στις Δευ 16 Νοε 2026 στις 08:42, ο/η Shop <s@shop.example> έγραψε:"),
    ("Still waiting!", "-----Original Message-----"),
    ("Still waiting!", "________________________________\nFrom: Shop <s@shop.example>\n"
                       "Sent: Monday, 16 November 2026 08:42\nTo: Ann\nSubject: RE: order"),
])
def test_quoted_replies_in_five_languages_are_kept_apart(reply, header):
    body = f"{reply}\n\n{header}\n> We are looking into it\n> Shop"
    env = parse_email(raw_mail(body.encode()), "box")
    assert env.customer_text == reply
    assert "We are looking into it" in env.text and header.splitlines()[-1] in env.text


@pytest.mark.parametrize("footer", ["-- \nAnn Lee\nACME Ltd", "Sent from my iPhone", "Gửi từ iPhone của tôi",
                                    "发自我的iPhone", "Отправлено с iPhone", "Στάλθηκε από το iPhone μου"])
def test_signatures_are_not_new_text(footer):
    env = parse_email(raw_mail(f"Please refund order 77.\n\n{footer}".encode()), "box")
    assert env.customer_text == "Please refund order 77."


def test_interleaved_quotes_are_dropped_from_the_new_text():
    body = "> Which order?\n77\n> And the date?\nMonday"
    assert new_text(body) == "77\nMonday"


# --- auto-replies ----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers, subject, kind", [
    ("Auto-Submitted: auto-replied\r\n", "Re: order", "auto_reply"),
    ("Auto-Submitted: auto-generated\r\n", "Your invoice", "auto_generated"),
    ("X-Autoreply: yes\r\n", "Re: order", "auto_reply"),
    ("X-Autorespond: yes\r\n", "Re: order", "auto_reply"),
    ("X-Auto-Response-Suppress: OOF, AutoReply\r\n", "Re: order", "auto_reply"),
    ("Precedence: bulk\r\n", "Newsletter", "bulk"),
    ("Precedence: auto_reply\r\n", "Re: order", "auto_reply"),
    ("Return-Path: <>\r\n", "Undeliverable: order", "bounce"),
    ("X-Loop: support@shop.example\r\n", "Re: order", "loop"),
    ("X-Omnintake-Loop: 1\r\n", "Re: order", "loop"),
    ("", "Out of Office: Re: order", "auto_reply"),
    ("", "Automatic reply: order", "auto_reply"),
    ("", "Delivery Status Notification (Failure)", "bounce"),
    ("", "Trả lời tự động: đơn hàng", "auto_reply"),
    ("", "自动回复: 订单", "auto_reply"),
    ("", "Автоответ: заказ", "auto_reply"),
    ("", "Αυτόματη απάντηση: παραγγελία", "auto_reply"),
])
def test_auto_replies_are_flagged_with_kind_and_reason(headers, subject, kind):
    raw = raw_mail(b"I am away.", headers=headers).replace(b"Subject: test", f"Subject: {subject}".encode())
    env = parse_email(raw, "box")
    assert env.metadata["auto_reply"] == kind and env.metadata["auto_reply_reason"]


def test_bounces_by_sender_and_report_and_a_person_is_not_flagged():
    daemon = raw_mail(b"failed").replace(b"Client <client@example.com>", b"MAILER-DAEMON@mx.example")
    assert parse_email(daemon, "box").metadata["auto_reply"] == "bounce"
    report = raw_mail(b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n",
                      'multipart/report; report-type=delivery-status; boundary="b"')
    assert parse_email(report, "box").metadata["auto_reply"] == "bounce"
    person = raw_mail(b"I was away, back now: where is my refund?", headers="Auto-Submitted: no\r\n")
    assert "auto_reply" not in parse_email(person, "box").metadata


# --- the real-world corpus, when present ---------------------------------------------------------

