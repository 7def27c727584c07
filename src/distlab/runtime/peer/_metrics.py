"""The peer transport's metrics, shared by its sending and receiving halves."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_SENT = Counter(
    "distlab_peer_messages_sent_total",
    "Envelopes for peers, by protocol and outcome: written to the peer's stream, failed with "
    "it, dropped by a full queue, too large for a stream, addressed to a node of unknown "
    "address, held back by an injected partition, or sent after the transport closed.",
    ["service", "outcome"])
MESSAGES_REJECTED = Counter(
    "distlab_peer_messages_rejected_total",
    "Envelopes and bulk payloads received from peers and not delivered, by protocol and "
    "reason.", ["service", "reason"])
BULK_TRANSFERS = Counter(
    "distlab_peer_bulk_transfers_total",
    "Bulk transfers (snapshots) sent to peers, by protocol and outcome.", ["service", "outcome"])
STREAMS_OPEN = Gauge(
    "distlab_peer_streams_open",
    "Peer streams open: outbound, one per peer this node is talking to; inbound, one per peer "
    "talking to it.", ["direction"])
STREAMS_REFUSED = Counter(
    "distlab_peer_streams_refused_total",
    "Peer streams and transfers this node refused at the handshake, by reason.", ["reason"])
ROUND_TRIP = Histogram(
    "distlab_peer_round_trip_time_seconds", "Round trip of a probe call to a peer.",
    ["peer"], buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)


OUTBOUND = STREAMS_OPEN.labels("outbound")
INBOUND = STREAMS_OPEN.labels("inbound")

_sent: dict[tuple[str, str], Counter] = {}
_rejected: dict[tuple[str, str], Counter] = {}


def count_sent(service: str, outcome: str, amount: int = 1) -> None:
    # Children are cached: a labels() call takes a lock, and this runs for every batch.
    child = _sent.get((service, outcome))
    if child is None:
        child = _sent[service, outcome] = MESSAGES_SENT.labels(service, outcome)
    child.inc(amount)


def count_rejected(service: str, reason: str, amount: int = 1) -> None:
    child = _rejected.get((service, reason))
    if child is None:
        child = _rejected[service, reason] = MESSAGES_REJECTED.labels(service, reason)
    child.inc(amount)
