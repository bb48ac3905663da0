"""JSON message files (one object or a list) from web forms, chat and social exports.

Each object is an envelope without `version`; unknown fields are an input error, not ignored.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from connectors.base import InputError
from pipeline.envelope import Envelope


def parse_messages(data: bytes | str, raw_ref: str | None = None) -> list[Envelope]:
    try:
        loaded: Any = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}") from exc
    objects = loaded if isinstance(loaded, list) else [loaded]
    envelopes = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InputError(f"item {i} is not an object")
        if raw_ref and "raw_ref" not in obj:
            obj = {**obj, "raw_ref": f"{raw_ref}#{i}"}
        try:
            envelopes.append(Envelope.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(object)"
            raise InputError(f"item {i}: {where}: {first['msg']}") from exc
    return envelopes
