"""The languages a customer and a channel account wrote in before: a prior for language detection.

Customers: one query per batch reads the languages of each sender's last `customer_messages` stored
messages (through their identity, so every channel of a linked customer counts). Channel accounts: the
language mix of the store's last `channel_messages` messages, grouped by (channel, account), read at most
once per `refresh_s`. Both skip `und` and unsure answers, work on SQLite and PostgreSQL (window
functions), and a store that cannot answer gives no prior rather than failing the message.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from classifiers.language import UNDETERMINED, LanguageConfig
from pipeline.envelope import Envelope
from pipeline.store.schema import customer_identities, messages

log = logging.getLogger(__name__)
Prior = dict[str, float]


class LanguageHistory:
    """`priors(envelopes)`: per envelope {lang: weight} from the sender's and the account's history, or None."""

    def __init__(self, engine: Engine, customer_messages: int = 20, channel_messages: int = 2000,
                 channel_weight: float = 0.25, max_age: timedelta = timedelta(days=365),
                 min_confidence: float = 0.5, refresh_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.customer_messages = customer_messages
        self.channel_messages = channel_messages
        self.channel_weight = channel_weight
        self.max_age = max_age
        self.min_confidence = min_confidence
        self.refresh_s = refresh_s
        self._clock = clock
        self._channels: dict[tuple[str, str], Counter[str]] = {}
        self._channels_read_at: float | None = None

    @classmethod
    def from_config(cls, engine: Engine, config: LanguageConfig) -> LanguageHistory:
        return cls(engine, config.prior_customer_messages, config.prior_channel_messages,
                   config.prior_channel_weight, timedelta(days=config.prior_max_age_days))

    def priors(self, envelopes: Sequence[Envelope]) -> list[Prior | None]:
        if not envelopes:
            return []
        try:
            customers = self.customer_languages([e.sender.key for e in envelopes])
            channels = self.channel_languages()
        except SQLAlchemyError as exc:  # a hint, not a requirement: detect without it
            log.warning("language history unavailable, detecting without a prior: %s", exc.__class__.__name__)
            return [None] * len(envelopes)
        return [combine(customers.get(e.sender.key), channels.get((e.channel, e.account)), self.channel_weight)
                for e in envelopes]

    def customer_languages(self, sender_keys: Sequence[str]) -> dict[str, Counter[str]]:
        """sender key (`kind:value`) -> languages of that customer's recent messages; one query."""
        wanted = set(sender_keys)
        values = sorted({key.split(":", 1)[1] for key in wanted})
        if not values or self.customer_messages <= 0:
            return {}
        ci, m = customer_identities, messages
        rank = func.row_number().over(partition_by=ci.c.id, order_by=(m.c.received_at.desc(), m.c.id.desc()))
        recent = (select(ci.c.kind, ci.c.value, m.c.language, rank.label("rank"))
                  .select_from(ci.join(m, m.c.customer_id == ci.c.customer_id))
                  .where(ci.c.value.in_(values), m.c.language != UNDETERMINED,
                         m.c.language_confidence >= self.min_confidence,
                         m.c.received_at >= datetime.now(UTC) - self.max_age)
                  .subquery())
        query = (select(recent.c.kind, recent.c.value, recent.c.language, func.count())
                 .where(recent.c.rank <= self.customer_messages)
                 .group_by(recent.c.kind, recent.c.value, recent.c.language))
        found: dict[str, Counter[str]] = {}
        with self.engine.connect() as conn:
            for kind, value, language, count in conn.execute(query):
                key = f"{kind}:{value}"
                if key in wanted:
                    found.setdefault(key, Counter())[language] += count
        return found

    def channel_languages(self) -> dict[tuple[str, str], Counter[str]]:
        """(channel, account) -> languages of the store's most recent messages; cached for `refresh_s`."""
        now = self._clock()
        if self._channels_read_at is not None and now - self._channels_read_at < self.refresh_s:
            return self._channels
        channels: dict[tuple[str, str], Counter[str]] = {}
        if self.channel_messages > 0:
            m = messages
            recent = (select(m.c.channel, m.c.account, m.c.language)
                      .where(m.c.language != UNDETERMINED, m.c.language_confidence >= self.min_confidence)
                      .order_by(m.c.id.desc()).limit(self.channel_messages).subquery())
            query = (select(recent.c.channel, recent.c.account, recent.c.language, func.count())
                     .group_by(recent.c.channel, recent.c.account, recent.c.language))
            with self.engine.connect() as conn:
                for channel, account, language, count in conn.execute(query):
                    channels.setdefault((channel, account), Counter())[language] += count
        self._channels, self._channels_read_at = channels, now
        return channels


def combine(customer: Counter[str] | None, channel: Counter[str] | None, channel_weight: float) -> Prior | None:
    """Shares of the customer's languages plus `channel_weight` x the account's shares: the customer's own
    history counts most, the account's mix helps a first message."""
    prior: Prior = {}
    for counts, weight in ((customer, 1.0), (channel, channel_weight)):
        total = sum(counts.values()) if counts else 0
        if not total or weight <= 0:
            continue
        for language, count in sorted(counts.items()):
            prior[language] = prior.get(language, 0.0) + weight * count / total
    return prior or None
