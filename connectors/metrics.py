"""Per-connector counters: received, published (durably accepted), errors, lag.

Plain numbers on the connector, read by tests and logs; `PrometheusCollector` exposes every
live connector's figures as `omnintake_connector_*{connector="..."}`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_live: weakref.WeakSet[ConnectorMetrics] = weakref.WeakSet()


@dataclass(eq=False)
class ConnectorMetrics:
    connector: str
    received: int = 0       # messages read from the channel
    published: int = 0      # messages the sink durably accepted
    errors: int = 0         # failures: channel errors, sink failures, malformed input
    rejected: int = 0       # malformed input quarantined or refused with a 4xx
    lag: float = 0.0        # messages known to be waiting in the channel, where the channel says
    last_error: str = ""
    last_published_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        _live.add(self)

    def error(self, exc: BaseException | str) -> None:
        self.errors += 1
        self.last_error = exc if isinstance(exc, str) else f"{exc.__class__.__name__}: {exc}"

    def accepted(self, count: int) -> None:
        self.published += count
        self.last_published_at = time.time()


class PrometheusCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        families = {
            "received": CounterMetricFamily("omnintake_connector_received", "Messages read", labels=["connector"]),
            "published": CounterMetricFamily("omnintake_connector_published", "Messages durably accepted",
                                             labels=["connector"]),
            "errors": CounterMetricFamily("omnintake_connector_errors", "Connector errors", labels=["connector"]),
            "rejected": CounterMetricFamily("omnintake_connector_rejected", "Malformed input refused",
                                            labels=["connector"]),
        }
        lag = GaugeMetricFamily("omnintake_connector_lag", "Messages waiting in the channel", labels=["connector"])
        totals: dict[str, dict[str, float]] = {}
        for m in list(_live):
            row = totals.setdefault(m.connector, dict.fromkeys([*families, "lag"], 0.0))
            for name in families:
                row[name] += getattr(m, name)
            row["lag"] += m.lag
        for connector, row in sorted(totals.items()):
            for name, family in families.items():
                family.add_metric([connector], row[name])
            lag.add_metric([connector], row["lag"])
        yield from families.values()
        yield lag
