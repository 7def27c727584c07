"""What a KV operation's failure says about whether it took effect.

A tester records each operation as ok, fail or info (Jepsen's model); these exceptions carry
the same three-way answer: success returns, `Definite` means the operation did not take
effect, `Indefinite` means it may have, at any time after it was invoked.
"""

from __future__ import annotations


class KVError(Exception):
    """Base of every failure the KV client reports."""

    definite: bool = False


class Definite(KVError):
    """The operation did not take effect and never will."""

    definite = True


class InvalidRequest(Definite):
    """The cluster refused the request as malformed (an empty key, a value too large)."""


class Rejected(Definite):
    """The cluster refused the request for its current state (an append past the size
    limit, a node that does not serve KV)."""


class Unavailable(Definite):
    """No member accepted the operation before the time budget ran out, and no attempt could
    have been applied (every member was unreachable or not the leader)."""


class Unreachable(Unavailable):
    """Every member refused the connection, so the operation was never sent: nothing listens
    at the addresses given. Raised at once by a client made with `fail_when_unreachable`."""


class Indefinite(KVError):
    """The operation may or may not have taken effect: an attempt reached a member and its
    outcome never came back before the time budget ran out."""
