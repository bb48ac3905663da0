"""The versioned message envelope every channel produces and every pipeline stage reads.

It is not the broker record: connectors build it, the transport carries its JSON, and the
published JSON Schema (`schemas/envelope.v1.json`) lets producers in other languages rely on it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

ENVELOPE_VERSION = 1
Channel = Literal["email", "chat", "social", "phone", "web"]
_NAMESPACE = uuid.UUID("6f1c3c8e-4b0e-4c55-9d0a-7f3e2a1b9c01")


class Sender(BaseModel):
    """Who sent the message, as the channel identifies them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$",
                      description="identity kind: email, phone, telegram_user, twitter_handle, ...")
    id: str = Field(min_length=1, max_length=320,
                    description="the identity's value in that kind (address, E.164, user id)")
    name: str | None = Field(default=None, description="display name (kept to 200 characters)")
    handle: str | None = None

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str | None) -> str | None:
        return value[:200] if value else value

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id.strip().lower()}"


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str | None = None
    content_type: str = "application/octet-stream"
    size: int = Field(ge=0)
    sha256: str | None = None


class Envelope(BaseModel):
    """One inbound customer message, frozen once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=ENVELOPE_VERSION, description="envelope schema version")
    channel: Channel
    account: str = Field(min_length=1, max_length=200,
                         description="mailbox, bot, page or phone line the message came to")
    message_id: str = Field(min_length=1, description="the channel's own id of this message")
    conversation_id: str | None = Field(default=None, description="chat id, thread or call id")
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    sender: Sender
    received_at: AwareDatetime
    subject: str | None = None
    text: str = Field(description="everything the customer sent, as text")
    customer_text: str | None = Field(
        default=None, description="the part that feeds classification (new text, customer speech); text if null"
    )
    language_hint: str | None = None
    public: bool = Field(default=False, description="posted where others can see it")
    attachments: tuple[Attachment, ...] = ()
    raw_ref: str | None = Field(default=None, description="where the raw original is kept")
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        """NUL characters cannot be stored in PostgreSQL text; they carry no meaning in a message."""
        return _strip_nul(data)

    @field_validator("language_hint")
    @classmethod
    def _primary_language(cls, value: str | None) -> str | None:
        """`zh-Hant-TW` -> `zh`: the pipeline works with primary language subtags."""
        return value.replace("_", "-").split("-", 1)[0].lower()[:8] or None if value else None

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != ENVELOPE_VERSION:
            raise ValueError(f"unknown envelope version {value}; this build reads {ENVELOPE_VERSION}")
        return value

    @cached_property
    def delivery_key(self) -> str:
        """Identifies one delivery of one channel message; redelivery has the same key."""
        return f"{self.channel}:{self.account}:{self.message_id}"

    @cached_property
    def envelope_id(self) -> str:
        return uuid5(_NAMESPACE, self.delivery_key)

    @property
    def partition_key(self) -> bytes:
        """Kafka key: one customer's messages stay on one partition, in order."""
        return self.sender.key.encode()

    @property
    def classify_text(self) -> str:
        return self.customer_text if self.customer_text is not None else self.text


def _strip_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strip_nul(v) for v in value]
    return value


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` without building UUID objects (this runs per message)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.casefold().split()).encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)
