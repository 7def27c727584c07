"""The node's peer transport, shared by every protocol instance the node hosts.

One long-lived gRPC stream per ordered pair of nodes (as etcd's peer streams) carries
envelopes `(service, group, payload, trace context)` for every instance: the consensus groups,
and later a chain replica and the transaction roles. `PeerTransport` is the sending half: a
bounded queue, a stream, a prober and the bulk transfers per peer. `PeerServicer` is the
receiving half, the Peer gRPC service, and `PeerRouter` hands what it receives to each
instance. A message on a stream costs a stream write rather than a whole unary call, which in
Python is several times cheaper in CPU and in latency.

Trace context crosses inside the envelope (a message on a stream is not a call, so the gRPC
interceptors cannot carry it): the sender's `<service>.send` span is the parent of the
receiver's `<service>.receive` span, and both join the trace of the operation the message
belongs to. Stream writes have no reply to time, so the round-trip histogram comes from a
prober calling each peer once a second, as etcd's does.

Vector clocks cross the same way, when the node keeps them (`PeerClock`: VCLOCK_LOG set, or
tracing on): every send and receive is an event of the node's one clock, the envelope carries
the send's stamp, and the send and receive spans carry the clocks as `distlab.vclock`.
Without a clock nothing of it is computed and the envelope's clock field stays empty.
"""

from distlab.runtime.peer._clocks import PeerClock, ShivizLog
from distlab.runtime.peer._router import Deliver, Delivery, MalformedPayload, PeerRouter
from distlab.runtime.peer._servicer import PeerServicer
from distlab.runtime.peer._transport import PeerTransport

__all__ = ["Deliver", "Delivery", "MalformedPayload", "PeerClock", "PeerRouter",
           "PeerServicer", "PeerTransport", "ShivizLog"]
