"""The delay before a failed notification is retried: doubling steps with equal jitter, capped, no sleeping."""

import random

import pytest

from alerts.notify.channels import RETRY_BASE_S, RETRY_CAP_S, retry_delay


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8])
def test_each_delay_is_half_its_step_fixed_and_half_random(attempt):
    step = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1))
    delays = [retry_delay(attempt, random.Random(seed)) for seed in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert max(delays) - min(delays) > step / 4, "jittered: retries after an outage do not arrive in lockstep"


def test_the_step_doubles_per_attempt_up_to_the_cap():
    assert retry_delay(1, _Fixed(0.0)) == RETRY_BASE_S / 2
    assert retry_delay(4, _Fixed(0.0)) == 4 * RETRY_BASE_S
    assert retry_delay(1000, _Fixed(1.0)) == RETRY_CAP_S, "never beyond the cap, however many attempts"
    assert retry_delay(0, _Fixed(1.0)) == RETRY_BASE_S, "an attempt below 1 counts as the first"


class _Fixed(random.Random):
    """A generator whose ``uniform`` always lands at ``where`` (0: the low end, 1: the high end)."""

    def __init__(self, where: float) -> None:
        super().__init__(0)
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.where
