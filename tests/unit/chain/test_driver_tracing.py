"""The chain driver carries a traced update's trace from hop to hop: what arrives in a
transport's receive span leaves, forwarded or acknowledged, in the same trace."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    Ack,
    ChainReplica,
    Forward,
    ReplicaConfig,
    StoredReplica,
    Update,
)
from distlab.runtime.chain.driver import ChainDriver

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)


class Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} is not used here")


def test_a_traced_forward_is_forwarded_and_acknowledged_in_its_trace() -> None:
    driver = ChainDriver(node_id=N2, core=ChainReplica(ReplicaConfig(N2), StoredReplica()),
                         storage=Unused(), transport=Unused(), master=Unused(),
                         clock=Unused())
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("chain.receive") as receive:
        assert driver.deliver(Forward(1, N1, N2, (Update(5, b"k", b"v"),), 5))
    onward = driver._trace_of(Forward(1, N2, N3, (Update(5, b"k", b"v"),), 5))
    assert onward is not None
    assert trace.get_current_span(onward).get_span_context() == receive.get_span_context()
    back = driver._trace_of(Ack(1, N2, N1, 5, 0, True))
    assert back is not None and trace.get_current_span(back) is receive
    # An untraced update travels untraced.
    assert driver.deliver(Forward(1, N1, N2, (Update(6, b"k", b"w"),), 6))
    assert driver._trace_of(Forward(1, N2, N3, (Update(6, b"k", b"w"),), 6)) is None
