"""Is the From address verified? Read from the Authentication-Results our own receiving server added.

Identity linking (`pipeline.identity`) treats `metadata["verified_email"]` as strong evidence that
the sender holds the address, so it is set only when all of these hold:

- an `Authentication-Results` header (RFC 8601) carries an authserv-id we were told to trust (the
  receiving MTA's, e.g. `mx.example.com`; none by default, so nothing is verified until configured);
  of several, the topmost trusted one counts (our server adds its header above what came with the
  mail). Headers from any other authserv-id are ignored: anyone can write them into a message.
  RFC 8601 section 5 requires the receiving server to remove headers that claim its own authserv-id
  from incoming mail (Postfix with OpenDMARC/OpenDKIM, rspamd and Exchange Online do); without that a
  sender could forge one;
- it says `dmarc=pass` (for the From domain, when `header.from` is given), or `dkim=pass` with a
  signing domain `header.d` aligned to the From domain (the same domain, or a parent of it with at
  least two labels: relaxed alignment without a public-suffix list);
- the message has exactly one From address.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*(?:/\s*\d+\s*)?=\s*([a-z]+)", re.I)
_PROPERTY = re.compile(r"([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*([^\s;]+)", re.I)


@dataclass(frozen=True, slots=True)
class Verified:
    address: str
    evidence: str  # e.g. "dmarc=pass header.from=example.com by mx.example.com"


def _without_comments(value: str) -> str:
    value = _QUOTED.sub('""', value)
    while True:
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            return value
        value = stripped


def _results(header: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """The authserv-id and (method, result, properties) of each result in one header value."""
    parts = _without_comments(" ".join(header.split())).split(";")
    authserv = parts[0].strip().split(" ")[0].lower() if parts[0].strip() else ""
    found = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if match:
            props = {k.lower(): v.strip('"').lower() for k, v in _PROPERTY.findall(part[match.end():])}
            found.append((match.group(1).lower(), match.group(2).lower(), props))
    return authserv, found


def _aligned(signer: str, domain: str) -> bool:
    signer = signer.strip(".")
    return signer == domain or ("." in signer and domain.endswith("." + signer))


def verified_sender(from_header: str, auth_results: Sequence[str], trusted: Collection[str]) -> Verified | None:
    """The From address if the topmost trusted Authentication-Results header verifies it, else None."""
    trusted_ids = {t.strip().lower() for t in trusted if t.strip()}
    addresses = [a.strip().lower() for _, a in getaddresses([from_header]) if a.strip()]
    if not trusted_ids or len(addresses) != 1 or addresses[0].count("@") != 1:
        return None
    address = addresses[0]
    domain = address.rsplit("@", 1)[1].strip(".")
    for header in auth_results:
        authserv, results = _results(header)
        if authserv not in trusted_ids:
            continue
        if any(method == "dmarc" and result != "pass" for method, result, _ in results):
            return None  # a DMARC failure is not outweighed by a signature
        for method, result, props in results:
            if method == "dmarc" and result == "pass" and props.get("header.from", domain) == domain:
                return Verified(address, f"dmarc=pass header.from={domain} by {authserv}")
        for method, result, props in results:
            signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if method == "dkim" and result == "pass" and signer and _aligned(signer, domain):
                return Verified(address, f"dkim=pass header.d={signer} by {authserv}")
        return None  # only the topmost trusted header counts
    return None
