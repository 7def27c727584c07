"""Known mistakes that can be planted in the chain core, so the simulator can prove it finds
them. Each is checked at the one place where the mistake would be made; with none planted
the core behaves exactly as without these hooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from distlab.core.bugs import planted_flags

CATALOGUE: Mapping[str, str] = MappingProxyType({
    "reply-before-tail": (
        "the head answers a write once it has forwarded it, before the tail applied it: "
        "an acknowledged write is lost when the head fails"
    ),
    "dirty-read": (
        "a CRAQ replica answers a read with its newest, dirty version instead of asking the "
        "tail: a read returns a value that is not committed"
    ),
    "skip-resend": (
        "after a reconfiguration a predecessor goes on from its own last update instead of "
        "resending the part of Sent its new successor lacks: the chain stalls on the gap"
    ),
    "stale-epoch-accepted": (
        "a replica acts on a configuration or message of an older epoch: it goes back to a "
        "role it no longer has"
    ),
    "forget-writers": (
        "the head numbers every write as new, without looking for the client's retry in its "
        "history: a write whose answer was lost is applied twice"
    ),
})


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    """One flag per catalogued bug; all False in a correct core."""

    reply_before_tail: bool = False
    dirty_read: bool = False
    skip_resend: bool = False
    stale_epoch_accepted: bool = False
    forget_writers: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> PlantedBugs:
        return cls(**planted_flags(names, CATALOGUE))
