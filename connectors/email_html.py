"""HTML mail bodies to plain text: blocks and <br> as line breaks, list items as bullets, table cells
separated, entities decoded, script/style/head dropped, blockquotes quoted with "> " so the reply
splitter can tell them from the new text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "head", "title", "template", "noscript"}
_BLOCK = {"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dt", "dd", "pre",
          "address", "section", "article", "header", "footer", "center", "form", "hr", "blockquote"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._quote = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [is_ordered, next number]
        self._cell = 0

    def _flush(self, blank: bool = True) -> None:
        text = "".join(self._line)
        text = text if self._pre else re.sub(r"[ \t\r\n\f\u00a0]+", " ", text).strip()
        self._line = []
        if text or (blank and self.lines and self.lines[-1]):
            self.lines.append(("> " * self._quote) + text if text else "")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if tag == "br":
            self._flush()
        elif tag in ("td", "th"):
            if self._cell:
                self._line.append(" | ")
            self._cell += 1
        elif tag in ("ul", "ol"):
            self._flush(blank=not self._lists)
            self._lists.append([tag == "ol", 1])
        elif tag == "li":
            self._flush(blank=False)
            depth = max(len(self._lists) - 1, 0)
            if self._lists and self._lists[-1][0]:
                self._line.append(f"{'  ' * depth}{self._lists[-1][1]}. ")
                self._lists[-1][1] += 1
            else:
                self._line.append(f"{'  ' * depth}- ")
        elif tag in _BLOCK:
            self._flush(blank=tag not in ("tr", "dt", "dd"))
            if tag == "blockquote":
                self._quote += 1
            if tag == "pre":
                self._pre += 1
            if tag == "tr":
                self._cell = 0

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(self._skip - 1, 0)
            return
        if tag in ("ul", "ol") and self._lists:
            self._flush(blank=False)
            self._lists.pop()
        elif tag in _BLOCK or tag == "li":
            self._flush(blank=tag not in ("li", "tr", "dt", "dd"))
            if tag == "blockquote" and self._quote:
                self._quote -= 1
            if tag == "pre" and self._pre:
                self._pre -= 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID or tag in _BLOCK:
            self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._line.append(data)

    def text(self) -> str:
        self._flush()
        out = "\n".join(self.lines)
        return re.sub(r"\n{3,}", "\n\n", out).strip()


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
        return parser.text()
    except Exception:  # the parser is lenient; this is for pathological input only
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


def meta_charset(markup: bytes) -> str | None:
    """The charset an HTML body declares in its own <meta>, for parts whose MIME header names none."""
    found = _META_CHARSET.search(markup[:4096])
    return found.group(1).decode("ascii") if found else None
