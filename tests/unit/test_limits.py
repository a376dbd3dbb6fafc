"""Circuit breakers and provider rate limits, driven by a fake clock."""

from __future__ import annotations

from turnout.gateway.guards import CircuitBreakers, RpmLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_probes_once() -> None:
    clock = Clock()
    breakers = CircuitBreakers(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert breakers.allow("m")
        breakers.failure("m")
    assert breakers.allow("m")
    breakers.failure("m")
    assert not breakers.allow("m") and breakers.is_open("m")
    clock.now += 9.9
    assert not breakers.allow("m")
    clock.now += 0.2
    assert breakers.allow("m"), "one probe after the cool-down"
    assert not breakers.allow("m"), "only one probe at a time"
    breakers.failure("m")
    assert not breakers.allow("m"), "a failed probe re-opens for another cool-down"
    clock.now += 10.1
    assert breakers.allow("m")
    breakers.success("m")
    assert breakers.allow("m") and breakers.allow("m") and not breakers.is_open("m")


def test_success_resets_the_failure_count() -> None:
    breakers = CircuitBreakers(threshold=2, cooldown_s=10, clock=Clock())
    breakers.failure("m")
    breakers.success("m")
    breakers.failure("m")
    assert breakers.allow("m")


def test_rpm_window_slides() -> None:
    clock = Clock()
    limiter = RpmLimiter(clock)
    assert all(limiter.try_acquire("p", 3) is None for _ in range(3))
    wait = limiter.try_acquire("p", 3)
    assert wait is not None and 59.9 < wait <= 60
    clock.now += 30
    assert limiter.try_acquire("p", 3) is not None
    clock.now += 30.1
    assert limiter.try_acquire("p", 3) is None
    assert limiter.try_acquire("other", 3) is None, "limits are per provider"
    assert all(limiter.try_acquire("unlimited", None) is None for _ in range(1000))


def test_a_breaker_opened_or_closed_elsewhere_applies_here_for_the_same_cooldown() -> None:
    clock = Clock()
    sent: list[dict[str, object]] = []
    here = CircuitBreakers(threshold=1, cooldown_s=10, clock=clock, publish=sent.append)
    there = CircuitBreakers(threshold=1, cooldown_s=10, clock=Clock(), publish=sent.append)
    here.failure("m", "acme", shared=False)  # one tenant's breaker
    here.failure("m")  # and the model's own
    assert [(e["tenant"], e["open"]) for e in sent] == [("acme", True), (None, True)]
    clock.now += 4
    for event in sent:
        there.on_event({**event, "for_s": 6.0})  # what was left of the cool-down when it arrived
    assert there.is_open("m") and there.is_open("m", "acme") and not there.allow("m", "other")
    assert 5.9 < there.retry_after_s("m") <= 6.0
    assert len(sent) == 2, "applying a remote breaker publishes nothing"
    here.clock = lambda: clock.now + 10  # the cool-down is over here: a probe succeeds
    assert here.allow("m", "acme")
    here.success("m", "acme")
    assert [e["open"] for e in sent[2:]] == [False, False]
    for event in sent[2:]:
        there.on_event(event)
    assert not there.is_open("m", "acme") and there.allow("m", "acme")
