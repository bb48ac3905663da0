"""Updates as the Telegram Bot API sends them (JSON dicts), for feeding `FakeTelegram`.

Shapes follow https://core.telegram.org/bots/api#update: `update_id` is added by the server.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]
T0 = int(datetime(2026, 11, 23, 7, 0, tzinfo=UTC).timestamp())
_file_ids = itertools.count(1)


def user(user_id: int = 5544120987, first_name: str = "Игорь", last_name: str | None = "Волков",
         username: str | None = "igor_volkov", language_code: str | None = "ru", is_bot: bool = False) -> JSON:
    data: JSON = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
    for key, value in (("last_name", last_name), ("username", username), ("language_code", language_code)):
        if value is not None:
            data[key] = value
    return data


def private_chat(of: JSON) -> JSON:
    chat = {"id": of["id"], "type": "private", "first_name": of["first_name"]}
    chat.update({k: of[k] for k in ("last_name", "username") if k in of})
    return chat


def group_chat(chat_id: int = -1001234567890, title: str = "Shop customers", supergroup: bool = True) -> JSON:
    return {"id": chat_id, "title": title, "type": "supergroup" if supergroup else "group"}


def message(message_id: int, sender: JSON | None = None, chat: JSON | None = None, text: str | None = None,
            date: int = T0, **fields: Any) -> JSON:
    sender = sender or user()
    data: JSON = {"message_id": message_id, "from": sender, "chat": chat or private_chat(sender), "date": date}
    if text is not None:
        data["text"] = text
    data.update(fields)
    return data


def edited(original: JSON, text: str, edit_date: int) -> JSON:
    changed = {k: v for k, v in original.items() if k not in ("text", "caption")}
    changed["caption" if "caption" in original else "text"] = text
    changed["edit_date"] = edit_date
    return changed


def _file(prefix: str, size: int) -> JSON:
    n = next(_file_ids)
    return {"file_id": f"{prefix}ACAgIAAxkBAAI{n:06d}ZnVrZQ", "file_unique_id": f"AQAD{n:06d}", "file_size": size}


def photo(width: int = 1280, height: int = 960, size: int = 183_412) -> list[JSON]:
    """Telegram sends every photo as several sizes, smallest first."""
    sizes = [(90, 67, 1_311), (320, 240, 18_842), (800, 600, 71_090), (width, height, size)]
    return [_file("Ag", s) | {"width": w, "height": h} for w, h, s in sizes]


def voice(duration: int = 7, size: int = 24_576) -> JSON:
    return _file("Aw", size) | {"duration": duration, "mime_type": "audio/ogg"}


def video(duration: int = 12, size: int = 2_482_112) -> JSON:
    return _file("Ba", size) | {"duration": duration, "width": 720, "height": 1280, "mime_type": "video/mp4",
                                "file_name": "IMG_4411.MP4"}


def document(file_name: str = "invoice-2026-118.pdf", mime_type: str = "application/pdf",
             size: int = 58_211) -> JSON:
    return _file("BQ", size) | {"file_name": file_name, "mime_type": mime_type}


def sticker(emoji: str = "😡", size: int = 31_002) -> JSON:
    return _file("CA", size) | {"width": 512, "height": 512, "emoji": emoji, "set_name": "AngryCats",
                                "is_animated": False, "is_video": False, "type": "regular"}


def contact(phone_number: str = "79001234567", first_name: str = "Игорь", last_name: str | None = "Волков",
            user_id: int | None = 5544120987) -> JSON:
    data: JSON = {"phone_number": phone_number, "first_name": first_name}
    if last_name:
        data["last_name"] = last_name
    if user_id is not None:
        data["user_id"] = user_id
    return data


def bot_kicked(chat: JSON, by: JSON, bot_id: int = 123456) -> JSON:
    """A `my_chat_member` update: the user blocked the bot (nothing for the intake)."""
    bot = user(bot_id, "Shop support", None, "shop_support_bot", None, is_bot=True)
    return {"chat": chat, "from": by, "date": T0,
            "old_chat_member": {"user": bot, "status": "member"},
            "new_chat_member": {"user": bot, "status": "kicked", "until_date": 0}}
