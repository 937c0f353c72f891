"""Token buckets on an injected clock: bursts, refill, the wait a refused request is told, and Retry-After."""

import pytest

from app.access.ratelimit import BURST_SECONDS, RateLimiter, retry_after_header
from tests.helpers import FakeClock


def test_a_full_bucket_passes_a_burst_of_rate_times_burst_seconds_then_refuses():
    limiter = RateLimiter(FakeClock())
    burst = int(2 * BURST_SECONDS)
    assert [limiter.acquire("k", 2) for _ in range(burst)] == [0.0] * burst
    assert limiter.acquire("k", 2) == pytest.approx(0.5), "one token comes back every 1/rate seconds"


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for _ in range(4):
        limiter.acquire("k", 2)
    clock.now += 0.25
    assert limiter.acquire("k", 2) == pytest.approx(0.25), "half a token back after a quarter second"
    clock.now += 0.25
    assert limiter.acquire("k", 2) == 0.0
    clock.now += 3600
    assert [limiter.acquire("k", 2) for _ in range(5)] == [0.0] * 4 + [pytest.approx(0.5)], "capped at the burst"


def test_a_refused_request_takes_no_token():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.acquire("k", 1)
    limiter.acquire("k", 1)
    for _ in range(10):
        assert limiter.acquire("k", 1) == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("k", 1) == 0.0


def test_keys_have_their_own_buckets_and_a_slow_rate_still_allows_one_request():
    limiter = RateLimiter(FakeClock())
    assert limiter.acquire("slow", 0.1) == 0.0, "a bucket holds at least one token"
    assert limiter.acquire("slow", 0.1) == pytest.approx(10.0)
    assert limiter.acquire("other", 0.1) == 0.0


def test_no_rate_means_no_limit():
    limiter = RateLimiter(FakeClock())
    assert all(limiter.acquire("k", 0) == 0.0 for _ in range(1000))
    assert limiter.wait("k", 0) == 0.0


def test_a_changed_rate_applies_to_the_existing_bucket():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for _ in range(2):
        limiter.acquire("k", 1)
    assert limiter.acquire("k", 1) == pytest.approx(1.0)
    assert limiter.acquire("k", 4) == pytest.approx(0.25), "refills at the new rate"


@pytest.mark.parametrize(("wait_s", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2"), (30.5, "31")])
def test_retry_after_is_whole_seconds_and_never_zero(wait_s, header):
    assert retry_after_header(wait_s) == header
