"""Bytes of a mail part or header to text, in the charset it declares or the one it really uses.

Declared charsets are widened to the supersets mailers actually send (GB2312 mail is GBK/GB18030,
Big5 is Big5-HKSCS, ISO-2022-JP is often Microsoft's CP5022x with NEC/IBM characters); undeclared
8-bit text is detected. U+FFFD appears only for bytes no candidate charset can decode.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from charset_normalizer import from_bytes

_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "cp936": "gb18030",
    "x-euc-cn": "gb18030", "chinese": "gb18030", "csgb2312": "gb18030",
    "big5": "big5hkscs", "x-big5": "big5hkscs", "big5-hkscs": "big5hkscs", "cn-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "ks_c_5601": "cp949",
    "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "shift-jis": "cp932", "windows-31j": "cp932",
    "euc-jp": "euc_jis_2004", "x-euc-jp": "euc_jis_2004",
    "iso-2022-jp": "iso-2022-jp", "cp50220": "iso-2022-jp", "cp50221": "iso-2022-jp", "cp50222": "iso-2022-jp",
    "csiso2022jp": "iso-2022-jp", "iso-2022-jp-ms": "iso-2022-jp",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252",
    "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8", "utf8": "utf-8", "x-unicode-2-0-utf-8": "utf-8",
    "iso-8859-9": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874", "iso-8859-8-i": "iso-8859-8",
    "koi8-ru": "koi8-u", "x-mac-cyrillic": "mac-cyrillic", "cp-850": "cp850", "windows-874": "cp874",
    "utf-16": "utf-16", "unicode": "utf-16", "ucs-2": "utf-16", "unicode-1-1-utf-7": "utf-7",
    "unknown-8bit": "", "x-unknown": "", "unknown": "", "default": "", "charset": "", "x-user-defined": "",
}
# Single-byte western charsets: a mislabelled UTF-8, CP1251 or KOI8-R body still "decodes" in them.
_WESTERN = {"cp1252", "iso-8859-15", "iso8859-15", "latin-9", "windows-1252", "cp850", "mac-roman"}
_MOJIBAKE_UTF8 = re.compile(r"[ÂÃÄÅÆÇÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö][\u0080-\u00bf\u2018-\u203a€ŠšŒœŽžŸƒˆ˜™]")
_LATIN_HIGH = re.compile(r"[\u00c0-\u00ff]")


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    charset: str  # the codec that produced `text` ("" for pure ASCII guesses)
    note: str = ""  # why it is not the declared one, or what was repaired / suspected


def _fallback_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8 inside UTF-8 text are almost always Windows-1252 (mixed-encoding mail)."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start:error.end]
    return bad.decode("cp1252", errors="ignore") or bad.decode("latin-1"), error.end


codecs.register_error("omnintake-cp1252", _fallback_cp1252)


def codec_for(declared: str | None) -> str:
    """The Python codec to try for a declared MIME charset ("" when it names none or an unknown one)."""
    name = (declared or "").strip().strip("\"'").lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    name = _ALIASES.get(name, name)
    if name.startswith("x-") and not _known(name):
        name = _ALIASES.get(name[2:], name[2:])
    return name if name == "iso-2022-jp" or _known(name) else ""


def _known(codec: str) -> bool:
    try:
        codecs.lookup(codec)
        return True
    except LookupError:
        return False


def decode_bytes(data: bytes, declared: str | None) -> Decoded:
    """Decode in the declared charset, else the detected one; NFC, so CP1258's combining tones compose."""
    decoded = _decode(data, codec_for(declared), bool((declared or "").strip()))
    text = decoded.text
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return Decoded(text, decoded.charset, decoded.note)


def _decode(data: bytes, codec: str, declared: bool) -> Decoded:
    if codec.startswith("utf-16") or (not codec and _looks_utf16(data)):
        return _decode_utf16(data, codec or "utf-16")
    if data.isascii() and b"\x1b" not in data and codec not in ("utf-7", "utf-32"):
        return Decoded(data.decode("ascii"), codec or "us-ascii")
    if codec == "iso-2022-jp":
        return _decode_iso2022jp(data)
    if codec and codec != "utf-8" and _is_utf8(data):  # valid multi-byte UTF-8 is never an accident
        return Decoded(data.decode("utf-8"), "utf-8", f"declared {codec} but is utf-8")
    if codec:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            pass
        else:
            return _check_western(data, text, codec) if codec in _WESTERN else Decoded(text, codec)
    elif _is_utf8(data):
        return Decoded(data.decode("utf-8"), "utf-8")
    if codec in ("utf-8", "") and _mostly_utf8(data):
        return Decoded(data.decode("utf-8", errors="omnintake-cp1252"), "utf-8", "mixed utf-8 and cp1252 bytes")
    if codec and _undecodable(data, codec) <= max(2, len(data) // 1000):  # the label is right; a few bytes are broken
        bad = _undecodable(data, codec)
        return Decoded(data.decode(codec, errors="replace"), codec, f"{bad} undecodable bytes in {codec}")
    guess = detect(data)
    if guess is not None:
        note = f"declared {codec} but does not decode in it; detected {guess.charset}" if codec else (
            f"undeclared; detected {guess.charset}")
        return Decoded(guess.text, guess.charset, f"{note}; {guess.note}" if guess.note else note)
    if codec in ("utf-8", ""):
        return Decoded(data.decode("utf-8", errors="omnintake-cp1252"), "utf-8", "mixed utf-8 and cp1252 bytes")
    return Decoded(data.decode(codec, errors="replace"), codec, f"undecodable bytes in {codec}")


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _undecodable(data: bytes, codec: str) -> int:
    return data.decode(codec, errors="replace").count("\ufffd") - data.count(b"\xef\xbf\xbd")


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 text with a few stray bytes (cp1252 pasted in, a cut sequence): decode it as UTF-8."""
    valid = len(_UTF8_SEQUENCE.findall(data))
    return valid >= 3 and _undecodable(data, "utf-8") * 20 <= valid


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def detect(data: bytes) -> Decoded | None:
    """charset-normalizer's best guess, except that Japanese is recognised by its kana first (the detector
    tends to read Shift_JIS as GB18030, which decodes without errors into nonsense)."""
    japanese = _japanese(data)
    if japanese is not None:
        return japanese
    best = from_bytes(data).best()
    if best is None or not best.encoding:
        return None
    codec = codec_for(best.encoding) or best.encoding
    try:
        return Decoded(data.decode(codec), codec)
    except (UnicodeDecodeError, LookupError):
        return Decoded(str(best), best.encoding)


def _japanese(data: bytes) -> Decoded | None:
    for codec in ("cp932", "euc_jis_2004"):
        text = data.decode(codec, errors="replace")
        bad = text.count("\ufffd")
        wide = [ch for ch in text if ord(ch) > 0x2000 and ch != "\ufffd"]
        kana = sum(1 for ch in wide if "\u3040" <= ch <= "\u30ff")
        if len(wide) >= 4 and kana / len(wide) >= 0.2 and bad <= max(2, len(data) // 200):
            return Decoded(text, codec, f"{bad} undecodable bytes in {codec}" if bad else "")
    return None


def _looks_utf16(data: bytes) -> bool:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return True
    sample = data[:400]
    return len(sample) >= 4 and sample.count(0) >= len(sample) // 4


def _decode_utf16(data: bytes, codec: str) -> Decoded:
    if codec in ("utf-16", "utf-16le", "utf-16be") and data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        codec = "utf-16"  # the BOM decides, whatever the label says
    elif codec == "utf-16":  # no BOM: ASCII-range text has its zero bytes first in big-endian
        even, odd = data[0::2].count(0), data[1::2].count(0)
        codec = "utf-16-be" if even > odd else "utf-16-le"
    if len(data) % 2:
        data = data[:-1]  # a truncated last code unit cannot be text
    try:
        return Decoded(data.decode(codec), codec)
    except UnicodeDecodeError:
        return Decoded(data.decode(codec, errors="replace"), codec, "undecodable bytes in utf-16")


def _decode_iso2022jp(data: bytes) -> Decoded:
    if not data.isascii():  # 8-bit bytes: not ISO-2022-JP whatever the label says (EUC-JP or Shift_JIS, often)
        for codec in ("utf-8", "euc_jis_2004", "cp932"):
            try:
                return Decoded(data.decode(codec), codec, f"declared iso-2022-jp but is {codec}")
            except UnicodeDecodeError:
                continue
    for codec in ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004"):
        try:
            return Decoded(data.decode(codec), codec)
        except UnicodeDecodeError:
            continue
    sjis = _jis_to_sjis(data)  # Microsoft CP50220/1/2: JIS rows with NEC/IBM extensions and half-width kana
    try:
        return Decoded(sjis.decode("cp932"), "cp50220")
    except UnicodeDecodeError:
        return Decoded(sjis.decode("cp932", errors="replace"), "cp50220", "undecodable bytes in iso-2022-jp")


def _jis_to_sjis(data: bytes) -> bytes:
    """Re-encode ISO-2022-JP (any CP5022x variant) as Shift_JIS bytes, so CP932 can decode them."""
    out = bytearray()
    mode, i, n = "ascii", 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B and i + 2 < n:
            seq = data[i + 1:i + 3]
            if seq in (b"$@", b"$B"):
                mode, i = "jis", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
        if b == 0x0E:
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if mode == "jis" and 0x21 <= b <= 0x7E and i + 1 < n and 0x21 <= data[i + 1] <= 0x7E:
            j1, j2 = b, data[i + 1]
            s1 = ((j1 - 0x21) >> 1) + 0x81
            s1 += 0x40 if s1 > 0x9F else 0
            s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0) if j1 & 1 else j2 + 0x7E
            out += bytes((s1, s2))
            i += 2
            continue
        out.append(b + 0x80 if mode == "kana" and 0x21 <= b <= 0x5F else b)
        i += 1
    return bytes(out)


def _check_western(data: bytes, text: str, codec: str) -> Decoded:
    """A body labelled Latin-1/CP1252 that is really UTF-8, CP1251 or KOI8-R: repair when the evidence is
    unambiguous (valid multi-byte UTF-8; or Latin-1 letters dominating so a Cyrillic charset explains them)."""
    if not _MOJIBAKE_UTF8.search(text):
        letters = sum(ch.isalpha() for ch in text)
        high = len(_LATIN_HIGH.findall(text))
        if letters and high / letters > 0.5 and high >= 8:
            return _as_cyrillic(data, text, codec)
        return Decoded(text, codec)
    try:
        return Decoded(data.decode("utf-8"), "utf-8", f"repaired: utf-8 declared as {codec}")
    except UnicodeDecodeError:
        return Decoded(text, codec, f"suspect: utf-8 read as {codec} in part of the text")


def _as_cyrillic(data: bytes, text: str, codec: str) -> Decoded:
    # lower-case letters dominate running text: CP1251 has them at 0xE0-0xFF, KOI8-R at 0xC0-0xDF
    upper_half = sum(1 for b in data if b >= 0xE0)
    lower_half = sum(1 for b in data if 0xC0 <= b < 0xE0)
    target = "cp1251" if upper_half >= lower_half else "koi8-r"
    return Decoded(data.decode(target), target, f"repaired: {target} declared as {codec}")


def mojibake_note(text: str) -> str:
    """For text that was decoded correctly but carries mojibake inside (UTF-8 bytes once read as CP1252 and
    re-encoded): the note to put in metadata. The text itself is left alone; see `repair_mojibake`."""
    hits = len(_MOJIBAKE_UTF8.findall(text))
    return f"suspect: {hits} utf-8-read-as-cp1252 sequences" if hits >= 2 else ""


def repair_mojibake(text: str) -> str | None:
    """The repaired text when the whole of it round-trips (CP1252 bytes that are valid UTF-8), else None."""
    try:
        repaired = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return repaired if repaired != text else None
