"""/v1/dead-letters: list, inspect and reprocess, on the configured transport (Kafka topic or store table)."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from downstream.api.auth import READERS, WRITERS, require_role
from downstream.api.schemas import DeadLetterDetail, DeadLetterSummary, ReprocessRequest
from pipeline.config import Settings
from pipeline.deadletters import DeadLetter, SqlDeadLetterQueue
from pipeline.dlq_commands import reprocess

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def _letters(request: Request, ids: set[str] | None, limit: int) -> list[DeadLetter]:
    settings: Settings = request.app.state.settings
    if settings.transport == "kafka":
        from pipeline.transport.kafka import KafkaDeadLetterQueue

        return asyncio.run(KafkaDeadLetterQueue(settings.kafka).read(ids, limit=limit))
    queue = SqlDeadLetterQueue(request.app.state.engine)
    if ids is None:
        return queue.list(limit)
    if not all(i.isdigit() for i in ids):
        return []
    return queue.get(sorted(ids))


def _summary(d: DeadLetter) -> dict[str, Any]:
    return {"id": d.id, "stage": d.stage, "error": d.error, "error_class": d.error_class, "attempts": d.attempts,
            "source": d.source, "created_at": d.created_at, "reprocessed": d.reprocessed}


@router.get("", response_model=list[DeadLetterSummary], dependencies=[Depends(require_role(*READERS))])
def list_dead_letters(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Newest first (embedded store); in Kafka mode in topic order, ids `partition:offset`."""
    return [_summary(d) for d in _letters(request, None, limit)]


@router.get("/{letter_id}", response_model=DeadLetterDetail, dependencies=[Depends(require_role(*READERS))])
def get_dead_letter(request: Request, letter_id: str) -> dict[str, Any]:
    """One dead letter with its original bytes (as text when they are UTF-8, and always as base64)."""
    found = _letters(request, {letter_id}, 1000)
    if not found:
        raise HTTPException(404, detail=f"no dead letter {letter_id}")
    letter = found[0]
    try:
        text: str | None = letter.payload.decode()
    except UnicodeDecodeError:
        text = None
    return _summary(letter) | {"payload_text": text, "payload_base64": base64.b64encode(letter.payload).decode()}


@router.post("/reprocess", dependencies=[Depends(require_role(*WRITERS))])
def reprocess_dead_letters(request: Request, body: ReprocessRequest) -> dict[str, Any]:
    """Send the original bytes through the pipeline again; reports found, missing and what became of them."""
    return reprocess(request.app.state.settings, body.ids)
