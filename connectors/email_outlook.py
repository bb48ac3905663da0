"""An Outlook .msg file (an OLE compound file, not RFC 5322) back to RFC 5322 bytes: its transport
headers (or, without them, sender, subject and id) and its plain-text body. Only what the envelope
needs is read; attachments inside the .msg are not."""

from __future__ import annotations

import re
import struct

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_END = 0xFFFFFFFE
_FREE = 0xFFFFFFFF
_WANTED = {"0037": "subject", "1000": "body", "0C1A": "sender_name", "0C1F": "sender", "5D01": "sender_smtp",
           "1035": "message_id", "007D": "headers", "1042": "in_reply_to", "1039": "references"}


class _Compound:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.shift = 1 << struct.unpack_from("<H", data, 0x1E)[0]
        self.mini = 1 << struct.unpack_from("<H", data, 0x20)[0]
        self.cutoff = struct.unpack_from("<I", data, 0x38)[0]
        n_fat, dir_start = struct.unpack_from("<II", data, 0x2C)
        minifat_start, _, difat_start, n_difat = struct.unpack_from("<IIII", data, 0x3C)
        fat_sectors = [s for s in struct.unpack_from("<109I", data, 0x4C) if s not in (_FREE, _END)]
        seen = 0
        while difat_start not in (_FREE, _END) and seen < n_difat:
            values = struct.unpack_from(f"<{self.shift // 4}I", data, self._offset(difat_start))
            fat_sectors += [s for s in values[:-1] if s not in (_FREE, _END)]
            difat_start, seen = values[-1], seen + 1
        fat = b"".join(self._sector(s) for s in fat_sectors[:n_fat])
        self.fat = struct.unpack(f"<{len(fat) // 4}I", fat)
        self.entries = self._read(dir_start)
        root = self._entry(0)
        self.ministream = self._chain_bytes(root[2], self.fat, self.shift, self._sector)[:root[3]]
        minifat = self._chain_bytes(minifat_start, self.fat, self.shift, self._sector) if minifat_start < _END else b""
        self.minifat = struct.unpack(f"<{len(minifat) // 4}I", minifat)

    def _offset(self, sid: int) -> int:
        return (sid + 1) * self.shift

    def _sector(self, sid: int) -> bytes:
        return self.data[self._offset(sid):self._offset(sid) + self.shift]

    def _mini_sector(self, sid: int) -> bytes:
        return self.ministream[sid * self.mini:(sid + 1) * self.mini]

    @staticmethod
    def _chain_bytes(start: int, table: tuple[int, ...], size: int, read) -> bytes:  # type: ignore[no-untyped-def]
        out, sid, steps = [], start, 0
        while sid < len(table) and sid not in (_END, _FREE) and steps <= len(table):
            out.append(read(sid))
            sid, steps = table[sid], steps + 1
        return b"".join(out)

    def _read(self, start: int) -> bytes:
        return self._chain_bytes(start, self.fat, self.shift, self._sector)

    def _entry(self, i: int) -> tuple[str, int, int, int, tuple[int, int, int]]:
        raw = self.entries[i * 128:(i + 1) * 128]
        name_len = struct.unpack_from("<H", raw, 64)[0]
        name = raw[:max(name_len - 2, 0)].decode("utf-16-le", errors="replace")
        left, right, child = struct.unpack_from("<III", raw, 68)
        start, size = struct.unpack_from("<II", raw, 116)
        return name, raw[66], start, size, (left, right, child)

    def top_level(self) -> dict[str, bytes]:
        """Streams directly under the root (the message's own properties), by name."""
        out: dict[str, bytes] = {}
        stack, seen = [self._entry(0)[4][2]], set()
        while stack:
            i = stack.pop()
            if i in (_FREE, _END) or i in seen or i * 128 >= len(self.entries):
                continue
            seen.add(i)
            name, kind, start, size, (left, right, _child) = self._entry(i)
            stack += [left, right]
            if kind == 2:
                if size < self.cutoff:
                    data = self._chain_bytes(start, self.minifat, self.mini, self._mini_sector)
                else:
                    data = self._read(start)
                out[name] = data[:size]
        return out


def msg_to_rfc822(data: bytes) -> bytes:
    """RFC 5322 bytes for an Outlook .msg; raises ValueError when the compound file is unreadable."""
    try:
        streams = _Compound(data).top_level()
    except (struct.error, IndexError) as exc:
        raise ValueError(f"unreadable OLE compound file: {exc}") from exc
    props: dict[str, str] = {}
    for name, value in streams.items():
        found = re.fullmatch(r"__substg1\.0_([0-9A-F]{4})(001F|001E)", name)
        if found and found.group(1) in _WANTED:
            codec = "utf-16-le" if found.group(2) == "001F" else "cp1252"
            props[_WANTED[found.group(1)]] = value.decode(codec, errors="replace").rstrip("\x00")
    if not props:
        raise ValueError("an OLE compound file without message properties")
    head = props.get("headers", "")
    head = re.sub(r"(?im)^(content-[\w-]+|mime-version):.*(?:\r?\n[ \t].*)*\r?\n?", "", head).strip()
    if not head:
        sender = props.get("sender_smtp") or props.get("sender", "")
        lines = [f"From: {props.get('sender_name', '')} <{sender}>" if "@" in sender else "",
                 f"Subject: {props.get('subject', '')}", f"Message-ID: {props.get('message_id', '')}",
                 f"In-Reply-To: {props.get('in_reply_to', '')}", f"References: {props.get('references', '')}"]
        head = "\r\n".join(line for line in lines if not line.endswith(": ") and line)
    mime = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
    return f"{head}\r\n{mime}\r\nX-Omnintake-Source: outlook-msg\r\n\r\n{props.get('body', '')}".encode()
