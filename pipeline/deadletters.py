"""Dead letters are data: the original bytes plus stage, error and attempt count.

Kafka mode writes them to the dead-letter topic (headers carry the reason); embedded mode keeps
them in the `dead_letters` table. Both can list entries and hand back the payload to reprocess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from pipeline.envelope import utcnow
from pipeline.store.schema import dead_letters


@dataclass(frozen=True, slots=True)
class DeadLetter:
    payload: bytes
    stage: str
    error: str
    error_class: str
    attempts: int
    source: str = ""
    id: str = ""
    created_at: datetime | None = None
    reprocessed: bool = False

    def headers(self) -> list[tuple[str, bytes]]:
        return [("stage", self.stage.encode()), ("error", self.error[:2000].encode()),
                ("error_class", self.error_class.encode()), ("attempts", str(self.attempts).encode()),
                ("source", self.source.encode())]

    @classmethod
    def from_headers(cls, payload: bytes, headers: list[tuple[str, bytes]], id: str,
                     created_at: datetime | None) -> DeadLetter:
        h = {k: v.decode(errors="replace") for k, v in headers}
        return cls(payload, h.get("stage", "?"), h.get("error", ""), h.get("error_class", ""),
                   int(h.get("attempts", "1") or 1), h.get("source", ""), id, created_at)


class SqlDeadLetterQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(dead_letters), [
                {"stage": d.stage, "error": d.error, "error_class": d.error_class, "attempts": d.attempts,
                 "payload": d.payload, "source": d.source, "created_at": now} for d in letters])

    def _rows(self, query) -> list[DeadLetter]:  # type: ignore[no-untyped-def]
        with self.engine.connect() as conn:
            return [DeadLetter(r.payload, r.stage, r.error, r.error_class, r.attempts, r.source or "", str(r.id),
                               r.created_at, r.reprocessed_at is not None) for r in conn.execute(query)]

    def list(self, limit: int = 100) -> list[DeadLetter]:
        return self._rows(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit))

    def get(self, ids: list[str]) -> list[DeadLetter]:
        return self._rows(select(dead_letters).where(dead_letters.c.id.in_([int(i) for i in ids])))

    def mark_reprocessed(self, ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(dead_letters).where(dead_letters.c.id.in_([int(i) for i in ids]))
                         .values(reprocessed_at=utcnow()))
