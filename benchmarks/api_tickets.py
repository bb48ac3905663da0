"""Ticket list API with 1,000,000 tickets in PostgreSQL: p95 latency per common filter, over real HTTP.

Creates a dedicated database, migrates it to 0004, bulk-loads customers, tickets and one message per
ticket with COPY, then migrates to head (migrations 0005 and 0007 build the ticket-list and search indexes
on the loaded data, as they would on a production store), serves the API with uvicorn and times
sequential requests with httpx (auth, query, JSON included). Chinese, Russian and Greek tickets are
written in their own words (Chinese without spaces), so searches in those languages are timed too.
Prints one JSON object (p50/p95/p99 per query shape); drops the database unless --keep.

    python -m benchmarks.api_tickets --tickets 1000000 --requests 200 --keep
    python -m benchmarks.api_tickets --database intake_api_bench_XXXXXXXX   # measure a kept one again
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.latency import percentile
from classifiers.labels import CATEGORIES
from downstream.api.app import create_app
from downstream.api.schemas import TicketQuery
from downstream.api.ticket_queries import TicketFilter, ticket_page
from downstream.api.tokens import create_token
from pipeline.config import Settings, StoreConfig
from pipeline.store.database import make_engine, upgrade

TARGET_P95_MS = 100.0
ADMIN_URL = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql+psycopg://intake:intake@127.0.0.1:5432/intake")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

STATUSES = (("open", 0.12), ("pending", 0.05), ("resolved", 0.20), ("closed", 0.62), ("merged", 0.01))
URGENCIES = (("low", 0.30), ("normal", 0.45), ("high", 0.20), ("critical", 0.05))
SLA_HOURS = {"critical": 4, "high": 24, "normal": 72, "low": 168}
TYPES = (("complaint", 0.45), ("inquiry", 0.35), ("suggestion", 0.07), ("praise", 0.08), ("spam", 0.05))
LANGUAGES = (("en", 0.50), ("de", 0.12), ("fr", 0.10), ("es", 0.10), ("it", 0.05), ("pt", 0.04), ("nl", 0.03),
             ("el", 0.02), ("ru", 0.02), ("zh", 0.02))
CHANNELS = (("email", 0.40), ("chat", 0.30), ("social", 0.15), ("phone", 0.10), ("web", 0.05))
DOMAIN_WORDS = ("order refund broken delivery parcel invoice charge account password login payment card late "
                "missing damaged wrong size colour return exchange cancel subscription app crash error screen "
                "battery warranty repair courier tracking address bank transfer fee price discount coupon "
                "voucher support agent waiting answer phone email complaint manager store shop website "
                "checkout basket stock delay weeks days again still never").split()
# The support words of Chinese, Russian and Greek tickets (most frequent first, as DOMAIN_WORDS).
NATIVE_WORDS = {
    "zh": ("订单 退款 损坏 快递 包裹 发票 扣款 账户 密码 登录 付款 银行卡 迟到 丢失 破损 错误 尺寸 颜色 退货 换货 取消 "
           "订阅 应用 闪退 屏幕 电池 保修 维修 物流 地址 转账 费用 价格 折扣 优惠券 客服 等待 回复 电话 投诉 经理 "
           "网站 结账 库存 延迟 几周 几天 还是 从来").split(),
    "ru": ("заказ возврат сломан доставка посылка счёт списание аккаунт пароль вход оплата карта поздно потерян "
           "повреждён размер цвет обмен отмена подписка приложение ошибка экран батарея гарантия ремонт курьер "
           "адрес перевод комиссия цена скидка купон поддержка оператор ожидание ответ телефон жалоба магазин "
           "сайт задержка неделя снова никогда").split(),
    "el": ("παραγγελία επιστροφή χαλασμένο παράδοση δέμα τιμολόγιο χρέωση λογαριασμός κωδικός σύνδεση πληρωμή "
           "κάρτα καθυστέρηση χαμένο κατεστραμμένο μέγεθος χρώμα ακύρωση συνδρομή εφαρμογή σφάλμα οθόνη μπαταρία "
           "εγγύηση επισκευή διεύθυνση τράπεζα τιμή έκπτωση κουπόνι υποστήριξη αναμονή απάντηση τηλέφωνο παράπονο "
           "κατάστημα ξανά ποτέ").split(),
}


def _pick(rng: np.random.Generator, choices: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    names, weights = zip(*choices, strict=True)
    return rng.choice(np.array(names, dtype=object), size=n, p=np.array(weights) / sum(weights))


def _iso(base: datetime, seconds: np.ndarray) -> list[str]:
    start = np.datetime64(base.replace(tzinfo=None), "s")
    return [s + "+00" for s in np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")]


def _words(rng: np.random.Generator, languages: np.ndarray, domain: int, other: int) -> list[str]:
    """`domain` support words (Zipf-like: "order" is common, "never" rare) in the ticket's language (English
    for most; Chinese without spaces, Russian and Greek with a capital now and then) plus `other` words of a
    20,000-word tail, so a search term matches anywhere from a few to many percent of tickets."""
    n = len(languages)
    ranks = np.arange(1, len(DOMAIN_WORDS) + 1)
    weights = 1 / ranks / (1 / ranks).sum()
    d = rng.choice(len(DOMAIN_WORDS), size=(n, domain), p=weights)
    t = rng.zipf(1.3, size=(n, other)) % 20_000
    shout = rng.random(n) < 0.2
    out = []
    for drow, trow, language, loud in zip(d, t, languages, shout, strict=True):
        native = NATIVE_WORDS.get(language)
        if native is None:
            words = " ".join(DOMAIN_WORDS[i] for i in drow)
        else:
            said = [native[i % len(native)] for i in drow]
            words = "".join(said) + "。" if language == "zh" else " ".join(said)
            words = words.upper() if loud else words
        out.append(" ".join([words] + [f"w{j}" for j in trow]))
    return out


def generate(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    status = _pick(rng, STATUSES, n)
    is_open = np.isin(status, ["open", "pending"])
    customers = max(n // 2, int(is_open.sum()) + 1)
    customer = rng.integers(1, customers + 1, size=n)
    customer[is_open] = np.arange(1, int(is_open.sum()) + 1)  # one open ticket per customer
    age = rng.integers(0, 365 * 86400, size=n)
    age[is_open] = rng.integers(0, 30 * 86400, size=int(is_open.sum()))  # open tickets are recent
    created = -age
    updated = np.minimum(created + rng.integers(0, 10 * 86400, size=n), 0)
    urgency = _pick(rng, URGENCIES, n)
    due = created + np.array([SLA_HOURS[u] * 3600 for u in urgency])
    ttype = _pick(rng, TYPES, n)
    category = np.where(ttype == "complaint", rng.choice(np.array(CATEGORIES, dtype=object), size=n), None)
    language = _pick(rng, LANGUAGES, n)
    subject = _words(rng, language, 2, 3)
    return {"n": n, "customers": customers, "status": status, "customer": customer, "created": _iso(NOW, created),
            "updated": _iso(NOW, updated), "due": _iso(NOW, due), "urgency": urgency, "type": ttype,
            "category": category, "language": language, "channel": _pick(rng, CHANNELS, n),
            "subject": subject, "body": _words(rng, language, 3, 12)}


def load(url: str, data: dict[str, Any], messages: bool) -> dict[str, float]:
    """COPY the rows in; returns seconds per table."""
    n, took = data["n"], {}
    engine = create_engine(url)
    raw: Any = engine.raw_connection()
    try:
        cur = raw.cursor()
        started = time.perf_counter()
        with cur.copy("COPY customers (id, display_name, vip, created_at) FROM STDIN") as copy:
            for cid in range(1, data["customers"] + 1):
                copy.write_row((cid, f"Customer {cid}", False, "2025-01-01T00:00:00+00"))
        took["customers_s"] = time.perf_counter() - started
        started = time.perf_counter()
        with cur.copy("COPY tickets (id, number, customer_id, status, type, category, urgency, language, channel, "
                      "subject, message_count, repeat_count, sla_due_at, created_at, updated_at) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((i + 1, f"BENCH-{i + 1:07d}", int(data["customer"][i]), data["status"][i],
                                data["type"][i], data["category"][i], data["urgency"][i], data["language"][i],
                                data["channel"][i], data["subject"][i], 1, 0, data["due"][i], data["created"][i],
                                data["updated"][i]))
        took["tickets_s"] = time.perf_counter() - started
        if messages:
            started = time.perf_counter()
            reasons = json.dumps({"labels": ["benchmark row"], "language": {}})
            with cur.copy("COPY messages (id, envelope_id, delivery_key, ticket_id, customer_id, channel, account, "
                          "channel_message_id, received_at, stored_at, subject, text, content_hash, language, "
                          "language_confidence, type, type_confidence, category, urgency, dedup_outcome, "
                          "dedup_reason, dedup_score, reasons, envelope) FROM STDIN") as copy:
                for i in range(n):
                    copy.write_row((i + 1, str(uuid.UUID(int=i + 1)), f"bench:{i + 1}", i + 1,
                                    int(data["customer"][i]), data["channel"][i], "bench", str(i + 1),
                                    data["created"][i], data["created"][i], data["subject"][i],
                                    data["subject"][i] + ". " + data["body"][i], f"{i + 1:064x}",
                                    data["language"][i], 0.9, data["type"][i], 0.8, data["category"][i],
                                    data["urgency"][i], "new", "first message", 0.0, reasons, "{}"))
            took["messages_s"] = time.perf_counter() - started
        for table in ("customers", "tickets", "messages"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return took


def analyze(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table in ("customers", "tickets", "messages"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def scenarios(rng: np.random.Generator) -> dict[str, Callable[[], dict[str, Any]]]:
    """Common queue views; each call varies the value so one cached answer is not timed over and over."""

    def one(values: tuple[tuple[str, float], ...]) -> str:
        return str(_pick(rng, values, 1)[0])

    def days_ago(days: float) -> str:
        return (NOW - timedelta(days=days * float(rng.uniform(0.5, 1.5)))).isoformat()

    def word() -> str:
        return str(rng.choice(DOMAIN_WORDS))

    def native(language: str) -> str:
        return str(rng.choice(NATIVE_WORDS[language]))

    return {
        "all, urgency order": lambda: {},
        "open queue (open+pending)": lambda: {"status": ["open", "pending"]},
        "status": lambda: {"status": one(STATUSES)},
        "open + urgency": lambda: {"status": "open", "urgency": one(URGENCIES)},
        "open + type + category": lambda: {"status": "open", "type": "complaint",
                                           "category": str(rng.choice(CATEGORIES))},
        "open + language": lambda: {"status": "open", "language": one(LANGUAGES)},
        "open + channel": lambda: {"status": "open", "channel": one(CHANNELS)},
        "language (any status)": lambda: {"language": one(LANGUAGES)},
        "created last 7 days, newest": lambda: {"sort": "created", "created_after": days_ago(7)},
        "updated last day, newest": lambda: {"sort": "updated", "updated_after": days_ago(1)},
        "search q (one support word)": lambda: {"q": word()},
        "open + search q": lambda: {"status": "open", "q": word()},
        "search q, two words": lambda: {"q": f"{word()} {word()}"},
        "search q, a phrase": lambda: {"q": f'"{word()} {word()}"'},
        "search q, rare word (tail)": lambda: {"q": f"w{int(rng.integers(200, 20_000))}"},
        "search q, newest first": lambda: {"q": word(), "sort": "created"},
        "search q, Chinese": lambda: {"q": native("zh")},
        "search q, Russian": lambda: {"q": native("ru")},
        "open + search q, Greek": lambda: {"status": "open", "q": native("el")},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """uvicorn in a thread, started and stopped around the measurements."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _timed(client: httpx.Client, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get("/v1/tickets", params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def _stats(ms: list[float], rows: list[int]) -> dict[str, Any]:
    p95 = percentile(ms, 95)
    return {"requests": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(p95, 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
            "mean_rows": round(sum(rows) / len(rows), 1), "met": p95 < TARGET_P95_MS}


def _query_ms(engine: Any, params: dict[str, Any]) -> float:
    """The same page without HTTP, auth and JSON: the store's share of a request."""
    lists = ("status", "urgency", "type", "category", "language", "channel")
    query = TicketQuery.model_validate({k: [v] if k in lists and not isinstance(v, list) else v
                                        for k, v in params.items()})
    found = TicketFilter(**query.model_dump(exclude={"sort", "limit", "cursor", "q"}), q=query.q)
    with engine.connect() as conn:
        started = time.perf_counter()
        ticket_page(conn, found, query.sort, query.limit, query.cursor)
        return (time.perf_counter() - started) * 1000


def measure(base_url: str, token: str, engine: Any, requests: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for name, make in scenarios(rng).items():
            for _ in range(3):  # warm-up: plans cached, pages in memory
                _timed(client, make())
            ms, rows, query_ms = [], [], []
            for _ in range(requests):
                params = make()
                elapsed, body = _timed(client, params)
                ms.append(elapsed)
                rows.append(len(body["items"]))
                query_ms.append(_query_ms(engine, params))
            out[name] = _stats(ms, rows) | {"query_only_p95_ms": round(percentile(query_ms, 95), 1)}
        ms, rows, cursor = [], [], None  # walking the open queue page after page, 50 a page
        for _ in range(requests):
            elapsed, body = _timed(client, {"status": "open"} | ({"cursor": cursor} if cursor else {}))
            ms.append(elapsed)
            rows.append(len(body["items"]))
            cursor = body["next_cursor"]
        out[f"open queue, pages 1-{requests}"] = _stats(ms, rows)
    return out


def _database(keep: bool, reuse: str | None) -> Iterator[str]:
    admin = create_engine(make_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = reuse or f"intake_api_bench_{uuid.uuid4().hex[:8]}"
    if not reuse:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep and not reuse:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_bench(tickets: int, requests: int, messages: bool, keep: bool, reuse: str | None = None,
              seed: int = 6) -> dict[str, Any]:
    result: dict[str, Any] = {"tickets": tickets, "messages": tickets if messages else 0,
                              "target_p95_ms": TARGET_P95_MS, "load_average_before": os.getloadavg()}
    for url in _database(keep, reuse):
        result["database"] = make_url(url).database
        if reuse:
            result["reused"] = True  # filled by an earlier --keep run with the same --tickets
            upgrade(url)
        else:
            upgrade(url, "0004")
            started = time.perf_counter()
            data = generate(tickets, seed)
            result["generate_s"] = round(time.perf_counter() - started, 1)
            result |= {k: round(v, 1) for k, v in load(url, data, messages).items()}
            del data
            started = time.perf_counter()
            upgrade(url)  # 0005 and 0007 build the ticket-list and search indexes on the loaded tables
            result["migrate_indexes_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        analyze(url)
        result["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                token = create_token(conn, f"bench-{uuid.uuid4().hex[:6]}", "viewer")
            with _Server(create_app(Settings(store=StoreConfig(url=url)), engine)) as base_url:
                result["scenarios"] = measure(base_url, token, engine, requests, seed)
        finally:
            engine.dispose()
    result["load_average_after"] = os.getloadavg()
    result["met"] = all(s["met"] for s in result["scenarios"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario")
    parser.add_argument("--no-messages", action="store_true", help="load tickets only (search then covers subjects)")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", default=None, help="measure again on a database kept by --keep")
    args = parser.parse_args()
    print(json.dumps(run_bench(args.tickets, args.requests, not args.no_messages, args.keep, args.database),
                     indent=1))


if __name__ == "__main__":
    main()
