"""Checks of received traces that several tests share; the receiver is distlab's own."""

from __future__ import annotations

from distlab.telemetry.receiver import SPAN_KIND_CONSUMER, SPAN_KIND_PRODUCER, ReceivedSpan


def assert_followers_received(spans: list[ReceivedSpan], propose: ReceivedSpan,
                              members: set[str], engine: str = "raft") -> None:
    """Each follower's `<engine>.receive` span in `spans` (one write's trace) sits under a
    `<engine>.send` span of the leader's, which sits under the write's `<engine>.propose`.

    At least one follower appears; a follower's append may ride in a batch that carries
    another trace's context, so not every follower need appear.
    """
    by_id = {s.span_id: s for s in spans}
    receives = [s for s in spans if s.name == f"{engine}.receive"]
    assert receives
    assert {s.service for s in receives} <= members - {propose.service}
    for span in receives:
        assert span.kind == SPAN_KIND_CONSUMER
        send = by_id[span.parent_span_id]
        assert send.name == f"{engine}.send"
        assert send.service == propose.service
        assert send.kind == SPAN_KIND_PRODUCER
        assert by_id[send.parent_span_id] is propose
