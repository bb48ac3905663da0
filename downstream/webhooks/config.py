"""Webhook settings: how long and how often a delivery is retried, timeouts, where events come from."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY_S = 24 * 3600.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Exponential backoff with jitter: the n-th retry waits first_delay_s * multiplier**(n-1), capped
    at max_delay_s, times a random factor in [1 - jitter, 1 + jitter]. A delivery goes to the dead
    letters at the first failure at least retry_for_s after its first attempt, so it is retried for
    that long whatever the jitter drew."""

    first_delay_s: float = Field(default=10.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay_s: float = Field(default=3600.0, gt=0)
    jitter: float = Field(default=0.2, ge=0.0, lt=1.0)
    retry_for_s: float = Field(default=DAY_S, gt=0, description="retry at least this long before dead-lettering")

    @model_validator(mode="after")
    def _cap_not_below_first(self) -> RetryPolicy:
        if self.max_delay_s < self.first_delay_s:
            raise ValueError("max_delay_s must be at least first_delay_s")
        return self

    def base_delay_s(self, failures: int) -> float:
        """The delay before the next attempt after `failures` failed attempts (without jitter)."""
        exponent = max(failures - 1, 0)
        # cap the exponent first: multiplier**large overflows a float
        if self.multiplier > 1 and exponent > 64:
            return self.max_delay_s
        return min(self.first_delay_s * self.multiplier ** exponent, self.max_delay_s)

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return self.base_delay_s(failures) * spread

    def gives_up(self, first_attempt_at: datetime, failed_at: datetime) -> bool:
        return failed_at - first_attempt_at >= timedelta(seconds=self.retry_for_s)

    def schedule_s(self) -> list[float]:
        """Delays (without jitter) from the first failure until the policy gives up; for docs and tests."""
        delays, elapsed, failures = [], 0.0, 1
        while elapsed < self.retry_for_s:
            delay = self.base_delay_s(failures)
            delays.append(delay)
            elapsed += delay
            failures += 1
        return delays


class WebhooksConfig(_Frozen):
    enabled: bool = Field(default=False, description="run the dispatcher inside `intake run`")
    group_id: str = "omnintake-webhooks"
    batch_max_records: int = Field(default=500, ge=1)
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float = Field(default=10.0, gt=0, description="whole request, connect to last byte")
    max_in_flight: int = Field(default=8, ge=1, description="concurrent deliveries per subscription (other tickets)")
    poll_interval_s: float = Field(default=1.0, gt=0)
    refresh_subscriptions_s: float = Field(default=5.0, gt=0)
    drain_timeout_s: float = Field(default=15.0, gt=0)
    user_agent: str = "Omnintake-Webhooks/1"

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery stays claimed: past it, a crashed dispatcher's claim is void."""
        return self.timeout_s * 2 + 10
