"""Telegram `Update` -> `Envelope` (channel "chat"), or the reason it carries nothing for the intake.

Ids: a message is `tg-<chat id>-<message id>` (message ids are unique per chat only). An edit is
a new revision of that message: `tg-<chat id>-<message id>-edit<update id>`, `references` naming
the original. The update id is what tells two edits apart (two in the same second have the
same `edit_date`) and is what Telegram sends again when it redelivers the same edit, so a
redelivered edit has the same delivery key and is stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update

from pipeline.envelope import Attachment, Envelope, Sender

MESSAGE_FIELDS = ("message", "edited_message", "channel_post", "edited_channel_post")
_FILES = (  # field, content type when Telegram gives none
    ("photo", "image/jpeg"), ("video", "video/mp4"), ("animation", "video/mp4"), ("video_note", "video/mp4"),
    ("voice", "audio/ogg"), ("audio", "audio/mpeg"), ("document", "application/octet-stream"),
    ("sticker", "image/webp"),
)
_SERVICE = (
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
    "group_chat_created", "supergroup_chat_created", "channel_chat_created", "message_auto_delete_timer_changed",
    "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message", "successful_payment", "refunded_payment",
    "users_shared", "chat_shared", "connected_website", "write_access_allowed", "proximity_alert_triggered",
    "boost_added", "chat_background_set", "forum_topic_created", "forum_topic_edited", "forum_topic_closed",
    "forum_topic_reopened", "general_forum_topic_hidden", "general_forum_topic_unhidden", "giveaway_created",
    "giveaway_completed", "video_chat_scheduled", "video_chat_started", "video_chat_ended",
    "video_chat_participants_invited", "web_app_data",
)
_HEADER = {"message_id", "message_thread_id", "from", "sender_chat", "date", "chat", "edit_date", "entities",
           "caption_entities", "reply_to_message", "forward_origin", "is_topic_message", "media_group_id",
           "has_protected_content", "author_signature", "link_preview_options", "reply_markup", "via_bot"}


@dataclass(frozen=True)
class Skip:
    reason: str


def to_envelope(update: Update, account: str) -> Envelope | Skip:
    field = next((f for f in MESSAGE_FIELDS if getattr(update, f) is not None), None)
    if field is None:
        kinds = [k for k in update.to_dict() if k != "update_id"]
        return Skip(f"{', '.join(kinds) or 'empty'} update carries no message")
    message: Message = getattr(update, field)
    sender = _sender(message)
    if sender is None:
        return Skip("message without a sender")
    if message.from_user is not None and message.from_user.is_bot:
        return Skip(f"sent by bot {message.from_user.id}")
    text = message.text or message.caption or ""
    metadata = {"update_id": str(update.update_id), "chat_type": message.chat.type}
    attachments = _attachments(message, metadata)
    shared = _shared(message, metadata)
    if not (text or attachments or shared):
        return Skip(_nothing_taken(message))
    chat_id = message.chat.id
    message_id = f"tg-{chat_id}-{message.message_id}"
    references: tuple[str, ...] = ()
    received_at = message.date
    if message.edit_date is not None and field.startswith("edited_"):
        metadata |= {"edit_of": message_id, "edited_at": message.edit_date.isoformat(),
                     "original_date": message.date.isoformat()}
        references = (message_id,)
        message_id = f"{message_id}-edit{update.update_id}"
        received_at = message.edit_date
    if message.chat.title:
        metadata["chat_title"] = message.chat.title
    if message.is_topic_message and message.message_thread_id:
        metadata["thread_id"] = str(message.message_thread_id)
    if message.from_user is not None and message.from_user.language_code:
        metadata["user_language"] = message.from_user.language_code  # the app's language, not the text's
    if message.forward_origin is not None:
        metadata["forwarded"] = "true"
    return Envelope(
        channel="chat", account=account, message_id=message_id, conversation_id=str(chat_id),
        in_reply_to=_replied(message), references=references, sender=sender, received_at=received_at,
        text=text, public=message.chat.type != "private", attachments=tuple(attachments),
        raw_ref=f"telegram:update:{update.update_id}", metadata=metadata,
    )


def _sender(message: Message) -> Sender | None:
    if message.from_user is not None:
        u = message.from_user
        return Sender(kind="telegram_user", id=str(u.id), name=u.full_name, handle=f"@{u.username}"
                      if u.username else None)
    if message.sender_chat is not None:  # channel posts, anonymous group admins
        c = message.sender_chat
        return Sender(kind="telegram_chat", id=str(c.id), name=c.title or c.full_name,
                      handle=f"@{c.username}" if c.username else None)
    return None


def _replied(message: Message) -> str | None:
    reply = message.reply_to_message
    # in a forum topic every message "replies" to the topic's creation; that is not a reply
    if reply is None or reply.forum_topic_created is not None:
        return None
    return f"tg-{message.chat.id}-{reply.message_id}"


def _attachments(message: Message, metadata: dict[str, str]) -> list[Attachment]:
    """File metadata only: nothing is downloaded (a file_id is enough to fetch it later)."""
    found = []
    for field, default_type in _FILES:
        value = getattr(message, field)
        if not value or (field == "document" and message.animation):  # an animation comes as a document too
            continue
        file = value[-1] if isinstance(value, tuple) else value  # photo: sizes, smallest first
        raw: dict[str, Any] = file.to_dict()  # plain JSON values: ptb's duration properties warn
        prefix = f"file.{len(found)}."
        metadata[prefix + "type"] = field
        for key in ("file_id", "file_unique_id", "duration", "width", "height", "emoji"):
            if raw.get(key) is not None:
                metadata[prefix + key] = str(raw[key])
        found.append(Attachment(filename=raw.get("file_name"), content_type=raw.get("mime_type") or
                                _sticker_type(raw, default_type), size=raw.get("file_size") or 0))
    return found


def _sticker_type(raw: dict[str, Any], default: str) -> str:
    if raw.get("is_animated"):
        return "application/x-tgsticker"
    return "video/webm" if raw.get("is_video") else default


def _shared(message: Message, metadata: dict[str, str]) -> bool:
    """Contact, location, venue: metadata (the phone is an identity hint for dedup)."""
    taken = False
    if (contact := message.contact) is not None:
        metadata["phone"] = normalise_phone(contact.phone_number)
        metadata["contact_name"] = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        if contact.user_id is not None:
            metadata["contact_user_id"] = str(contact.user_id)
            # a user sharing their own contact (the "share my phone" button) proves the number is theirs
            own = message.from_user is not None and contact.user_id == message.from_user.id
            metadata["phone_owner"] = "sender" if own else "other"
        taken = True
    location = message.venue.location if message.venue else message.location
    if location is not None:
        metadata["latitude"], metadata["longitude"] = str(location.latitude), str(location.longitude)
        if message.venue:
            metadata["venue"] = f"{message.venue.title}, {message.venue.address}"
        taken = True
    return taken


def normalise_phone(number: str) -> str:
    """Telegram sends the number with or without "+"; always international: E.164 `+<digits>`."""
    return "+" + re.sub(r"\D", "", number)


def _nothing_taken(message: Message) -> str:
    service = [f for f in _SERVICE if getattr(message, f, None)]
    if service:
        return f"service message ({', '.join(service)})"
    content = sorted({k for k, v in message.to_dict().items() if v} - _HEADER)
    return f"no text, file or contact ({', '.join(content) or 'empty'})"
