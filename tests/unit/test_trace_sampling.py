"""The trace sampler reads OpenTelemetry's standard variables and samples as the SDKs do."""

from __future__ import annotations

import random

import pytest

from turnout.tracing.sampling import Sampler


def _share(sampler: Sampler, parent: int | None = None, n: int = 20_000) -> float:
    rng = random.Random(7)
    return sum(sampler.flags(rng.getrandbits(128), parent) for _ in range(n)) / n


def test_by_default_every_request_is_sampled_unless_its_parent_is_not() -> None:
    sampler = Sampler.from_environ({})
    assert _share(sampler) == 1.0
    assert _share(sampler, parent=1) == 1.0 and _share(sampler, parent=0) == 0.0


def test_a_ratio_samples_that_share_of_trace_ids_and_always_the_same_ones() -> None:
    sampler = Sampler.from_environ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert abs(_share(sampler) - 0.25) < 0.015
    assert _share(sampler, parent=1) == _share(sampler, parent=0)  # not parent-based: the id decides
    other = Sampler.from_environ(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    rng = random.Random(3)
    ids = [rng.getrandbits(128) for _ in range(200)]
    kept = [sampler.flags(i, None) for i in ids]
    assert [other.flags(i, None) for i in ids] == kept and 0 < sum(kept) < 200  # same ratio, same traces
    assert _share(other, parent=1) == 1.0 and _share(other, parent=0) == 0.0


@pytest.mark.parametrize(
    ("name", "root", "after_sampled_parent"),
    [
        ("always_on", 1.0, 1.0),
        ("always_off", 0.0, 0.0),
        ("parentbased_always_off", 0.0, 1.0),
        ("PARENTBASED_ALWAYS_ON", 1.0, 1.0),
        ("jaeger_remote", 1.0, 1.0),  # not supported: the default, as the SDKs fall back
    ],
)
def test_each_named_sampler(name: str, root: float, after_sampled_parent: float) -> None:
    sampler = Sampler.from_environ({"OTEL_TRACES_SAMPLER": name})
    assert (_share(sampler, n=2000), _share(sampler, parent=1, n=2000)) == (root, after_sampled_parent)


@pytest.mark.parametrize("arg", ["2", "-0.1", "abc", "nan", ""])
def test_a_ratio_that_is_not_one_samples_everything(arg: str) -> None:
    sampler = Sampler.from_environ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": arg})
    assert _share(sampler, n=2000) == 1.0
