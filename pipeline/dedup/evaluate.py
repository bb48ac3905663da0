"""Run the dedup test set through the real pipeline (stages, store, identity linking) on a fresh
SQLite store and score it: a pair counts as found when its second message is stored as a content
or near duplicate of the first. One customer per pair; "another channel" pairs link the second
identity to the first by strong evidence (a shared phone number or verified address), as in production.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from pipeline.config import Settings, StoreConfig
from pipeline.dedup.testset import Pair
from pipeline.processor import Processor, RawRecord
from pipeline.store.database import make_engine, upgrade
from pipeline.store.schema import messages

FOUND = ("content_duplicate", "near_duplicate")
_T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass(slots=True)
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    kinds: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # kind: [right, total]
    misses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _sender(channel: str, tag: str) -> dict[str, str]:
    if channel == "email":
        return {"kind": "email", "id": f"{tag}@example.com", "name": f"Customer {tag}"}
    if channel == "phone":
        digits = "".join(str(ord(c) % 10) for c in tag)
        return {"kind": "phone", "id": f"+1555{digits[-10:]:0>10}", "name": f"Customer {tag}"}
    return {"kind": "telegram_user", "id": tag, "name": f"Customer {tag}"}


def _envelope(i: int, side: str, channel: str, sender: dict[str, str], text: str, when: datetime,
              metadata: dict[str, str]) -> bytes:
    account = {"email": "support@shop.example", "phone": "hotline", "chat": "telegram:@shop"}[channel]
    body = {"channel": channel, "account": account, "message_id": f"eval-{i}-{side}", "sender": sender,
            "received_at": when.isoformat(), "text": text, "metadata": metadata,
            "conversation_id": None if channel == "email" else f"conv-{i}-{side}"}
    return orjson.dumps(body)


def records(pairs: list[Pair]) -> tuple[list[RawRecord], list[RawRecord]]:
    first, second = [], []
    for i, pair in enumerate(pairs):
        a = _sender(pair.a_channel, f"p{i}")
        meta: dict[str, str] = {}
        if not pair.same_customer:
            b = _sender(pair.b_channel, f"p{i}x")
        elif pair.a_channel == pair.b_channel:
            b = a
        else:
            b = _sender(pair.b_channel, f"p{i}b")
            meta = {"phone": a["id"], "phone_owner": "sender"} if a["kind"] == "phone" else {"verified_email": a["id"]}
        first.append(RawRecord(_envelope(i, "a", pair.a_channel, a, pair.a, _T0, {}), f"eval/{i}/a"))
        second.append(RawRecord(_envelope(i, "b", pair.b_channel, b, pair.b, _T0 + timedelta(hours=pair.hours), meta),
                                f"eval/{i}/b"))
    return first, second


def evaluate(pairs: list[Pair], settings: Settings | None = None) -> Score:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'dedup-eval.db'}"
        upgrade(url)
        engine = make_engine(url)
        base = settings or Settings()
        processor = Processor(base.model_copy(update={"store": StoreConfig(url=url)}), engine)
        try:
            first, second = records(pairs)
            for batch in (first, second):
                result = processor.process(batch)
                if result.dead_letters:
                    raise RuntimeError(f"evaluation message refused: {result.dead_letters[0].error}")
            with engine.connect() as conn:
                outcome = dict(conn.execute(select(messages.c.delivery_key, messages.c.dedup_outcome)).tuples().all())
                reason = dict(conn.execute(select(messages.c.delivery_key, messages.c.dedup_reason)).tuples().all())
        finally:
            processor.close()
            engine.dispose()
    score = Score()
    for i, pair in enumerate(pairs):
        account = {"email": "support@shop.example", "phone": "hotline", "chat": "telegram:@shop"}[pair.b_channel]
        key = f"{pair.b_channel}:{account}:eval-{i}-b"
        found = outcome.get(key) in FOUND
        right = found == pair.duplicate
        score.kinds[pair.kind][0] += right
        score.kinds[pair.kind][1] += 1
        if pair.duplicate:
            score.tp += found
            score.fn += not found
        else:
            score.fp += found
            score.tn += not found
        if not right:
            score.misses.append({"kind": pair.kind, "expected": pair.duplicate, "outcome": outcome.get(key),
                                 "reason": reason.get(key), "a": pair.a[:160], "b": pair.b[:160]})
    return score
