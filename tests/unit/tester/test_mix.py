"""The operation mix of `distlab test`: parsing `--mix` and drawing functions from it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from distlab.check.tester.mix import DEFAULT_MIX, MixError, parse_mix


class FixedSource:
    """Returns the given numbers in turn, as `random.Random.random` would."""

    def __init__(self, *numbers: float) -> None:
        self._numbers = list(numbers)

    def random(self) -> float:
        return self._numbers.pop(0)


def test_default_mix_has_the_documented_shares() -> None:
    mix = parse_mix(DEFAULT_MIX)
    assert [name for name, _ in mix.weights] == ["get", "put", "append", "cas"]
    assert mix.share("get") == pytest.approx(0.4)
    assert mix.share("put") == pytest.approx(0.3)
    assert mix.share("append") == pytest.approx(0.2)
    assert mix.share("cas") == pytest.approx(0.1)
    assert mix.share("delete") == 0


def test_weights_are_relative_and_zero_leaves_a_function_out() -> None:
    mix = parse_mix(" get = 2, put=2 ,cas=0")
    assert mix.share("get") == pytest.approx(0.5)
    assert mix.share("put") == pytest.approx(0.5)
    assert [name for name, _ in mix.weights] == ["get", "put"]
    draws = {mix.choose(random.Random(seed)) for seed in range(200)}
    assert draws == {"get", "put"}


def test_choose_maps_the_unit_interval_onto_cumulative_weights() -> None:
    mix = parse_mix("get=0.4,put=0.3,append=0.2,cas=0.1")
    assert mix.choose(FixedSource(0.0)) == "get"
    assert mix.choose(FixedSource(0.399)) == "get"
    assert mix.choose(FixedSource(0.401)) == "put"
    assert mix.choose(FixedSource(0.75)) == "append"
    assert mix.choose(FixedSource(0.95)) == "cas"
    assert mix.choose(FixedSource(0.9999999)) == "cas"


def test_draws_follow_the_weights() -> None:
    mix = parse_mix("get=0.5,put=0.25,append=0.25")
    rng = random.Random(7)
    counts = Counter(mix.choose(rng) for _ in range(20_000))
    assert counts["get"] / 20_000 == pytest.approx(0.5, abs=0.02)
    assert counts["put"] / 20_000 == pytest.approx(0.25, abs=0.02)
    assert counts["append"] / 20_000 == pytest.approx(0.25, abs=0.02)
    assert set(counts) == {"get", "put", "append"}


def test_describe_prints_normalised_shares() -> None:
    assert parse_mix("get=2,put=6").describe() == "get=0.25,put=0.75"


@pytest.mark.parametrize(("text", "message"), [
    ("get=0.5,read=0.5", "unknown function 'read'"),
    ("get=0.5,get=0.5", "get is given twice"),
    ("get=-1,put=1", "finite number >= 0"),
    ("get=inf", "finite number >= 0"),
    ("get=nan", "finite number >= 0"),
    ("get=lots", "'lots' is not a number"),
    ("get", "expected function=weight"),
    ("get=1,,put=1", "empty entry"),
    ("get=0,put=0", "no function a positive weight"),
    ("", "empty entry"),
])
def test_bad_mixes_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(text)
