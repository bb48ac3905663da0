"""Live counters for the console header: the open queue by urgency, SLA breaches, tickets opened in the last hour,
dead letters waiting. Each is one indexed aggregate, cheap enough to poll every few seconds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from pipeline.store.schema import OPEN_STATUSES, dead_letters, tickets


def live_counters(conn: Connection, now: datetime) -> dict[str, Any]:
    open_queue = and_(tickets.c.status.in_(OPEN_STATUSES))
    by_urgency = dict(conn.execute(select(tickets.c.urgency, func.count()).where(open_queue)
                                   .group_by(tickets.c.urgency)).all())
    overdue = conn.execute(select(func.count()).select_from(tickets)
                           .where(open_queue, tickets.c.sla_due_at < now)).scalar_one()
    last_hour = conn.execute(select(func.count()).select_from(tickets)
                             .where(tickets.c.created_at >= now - timedelta(hours=1))).scalar_one()
    waiting = conn.execute(select(func.count()).select_from(dead_letters)
                           .where(dead_letters.c.reprocessed_at.is_(None))).scalar_one()
    return {"open": sum(by_urgency.values()), "by_urgency": {u: by_urgency.get(u, 0) for u in
                                                             ("critical", "high", "normal", "low")},
            "overdue": overdue, "tickets_last_hour": last_hour, "dead_letters": waiting,
            "at": now.isoformat()}
