"""The retry schedule: exponential, capped, jittered, and at least 24 hours before a dead letter."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from downstream.webhooks.config import DAY_S, RetryPolicy, WebhooksConfig

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_default_delays_double_up_to_the_cap():
    policy = RetryPolicy()
    assert [policy.base_delay_s(n) for n in range(1, 6)] == [10, 20, 40, 80, 160]
    assert policy.base_delay_s(12) == policy.base_delay_s(500) == 3600


def test_jitter_stays_within_its_band_and_varies():
    policy = RetryPolicy(jitter=0.2)
    rng = random.Random(7)
    draws = [policy.delay_s(3, rng) for _ in range(500)]
    assert all(32 <= d <= 48 for d in draws)
    assert max(draws) - min(draws) > 10


def test_the_default_policy_retries_for_at_least_a_day():
    policy = WebhooksConfig().retry
    assert policy.retry_for_s >= DAY_S
    assert not policy.gives_up(T0, T0 + timedelta(hours=23, minutes=59))
    assert policy.gives_up(T0, T0 + timedelta(hours=24))
    schedule = policy.schedule_s()
    assert sum(schedule) >= DAY_S and len(schedule) > 20


def test_with_the_lowest_jitter_every_draw_the_attempts_still_span_the_whole_period():
    """Giving up is decided by elapsed time, so the shortest jitter only adds attempts."""
    policy = RetryPolicy(jitter=0.5)
    elapsed, failures = 0.0, 0
    while not policy.gives_up(T0, T0 + timedelta(seconds=elapsed)):
        failures += 1
        elapsed += policy.base_delay_s(failures) * 0.5
    assert elapsed >= DAY_S and failures > len(policy.schedule_s())


def test_a_short_test_schedule_is_just_settings():
    policy = RetryPolicy(first_delay_s=0.05, multiplier=2, max_delay_s=0.4, jitter=0, retry_for_s=2)
    assert policy.schedule_s()[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]


def test_a_cap_below_the_first_delay_is_refused_with_the_key_named():
    with pytest.raises(ValidationError, match="max_delay_s"):
        RetryPolicy(first_delay_s=60, max_delay_s=10)
