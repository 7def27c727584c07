"""The operation mix of a test run: which KV functions clients invoke, and how often."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Functions a tester client can invoke, in the order a mix is printed.
MIX_FUNCTIONS = ("get", "put", "append", "cas", "delete")
DEFAULT_MIX = "get=0.4,put=0.3,append=0.2,cas=0.1"


class UniformSource(Protocol):
    """What a mix draws from: `random.Random` fits."""

    def random(self) -> float: ...


class MixError(ValueError):
    """A mix that cannot be used; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class Mix:
    """Relative weights of functions; only functions with a positive weight are drawn."""

    weights: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        assert self.weights, "a mix needs at least one function"
        assert all(weight > 0 for _, weight in self.weights)

    @property
    def total(self) -> float:
        return sum(weight for _, weight in self.weights)

    def share(self, f: str) -> float:
        """The fraction of operations that are `f` (0 when the mix has none)."""
        return sum(weight for name, weight in self.weights if name == f) / self.total

    def choose(self, source: UniformSource) -> str:
        """One function, drawn with probability proportional to its weight."""
        point = source.random() * self.total
        for name, weight in self.weights:
            point -= weight
            if point < 0:
                return name
        return self.weights[-1][0]  # rounding left `point` at exactly zero

    def describe(self) -> str:
        return ",".join(f"{name}={weight / self.total:.3g}" for name, weight in self.weights)


def parse_mix(text: str, functions: Sequence[str] = MIX_FUNCTIONS) -> Mix:
    """`get=0.4,put=0.3,...`: weights need not add up to one; they are relative.

    A weight of zero leaves the function out; negative, non-numeric, repeated or unknown
    entries are refused, and so is a mix in which nothing has a positive weight.
    """
    weights: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise MixError(f"empty entry in mix {text!r}")
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep:
            raise MixError(f"mix entry {item!r}: expected function=weight")
        if name not in functions:
            raise MixError(f"mix entry {item!r}: unknown function {name!r} "
                           f"(expected one of {', '.join(functions)})")
        if name in weights:
            raise MixError(f"mix entry {item!r}: {name} is given twice")
        try:
            weight = float(number)
        except ValueError:
            raise MixError(f"mix entry {item!r}: {number.strip()!r} is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise MixError(f"mix entry {item!r}: the weight must be a finite number >= 0")
        weights[name] = weight
    positive = tuple((name, weight) for name, weight in weights.items() if weight > 0)
    if not positive:
        raise MixError(f"mix {text!r} gives no function a positive weight")
    return Mix(positive)
