"""Multi-Paxos records on the simulated disk: what a Ready writes is what a restart reads."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Accepted,
    Ballot,
    Decision,
    Ready,
    Snapshot,
    SnapshotMeta,
    Value,
)
from distlab.sim.disk import Record
from distlab.sim.paxos.storage import (
    PaxosFormat,
    PaxosRecoveryError,
    encode_snapshot_file,
    recover,
)

B1, B2 = Ballot(1, NodeId(1)), Ballot(2, NodeId(3))


def ready(**parts: object) -> Ready:
    fields: dict[str, object] = {"promised": None, "accepted": (), "decided": (),
                                 "snapshot": None, "messages": (), "committed_entries": (),
                                 "read_states": ()}
    fields.update(parts)
    return Ready(**fields)  # type: ignore[arg-type]


def records_of(*readys: Ready) -> tuple[list[Record], bytes | None]:
    form, records, snapshot_file = PaxosFormat(), [], None
    for one in readys:
        file, encoded = form.encode_ready(one)
        snapshot_file = file or snapshot_file
        records += [Record(0, kind, body) for kind, body in encoded]
    return records, snapshot_file


def test_promise_acceptances_and_decisions_come_back() -> None:
    noop, command = Value(None, B1), Value(b"put x", B1)
    records, file = records_of(
        ready(promised=B1, accepted=(Accepted(1, B1, command), Accepted(2, B1, noop))),
        ready(promised=B2, accepted=(Accepted(2, B2, Value(b"y", B2)),),
              decided=(Decision(1, command),)))
    state = recover(records, file)
    assert state.promised() == B2
    assert state.accepted() == [Accepted(1, B1, command), Accepted(2, B2, Value(b"y", B2))]
    assert state.decided() == [Decision(1, command)]
    assert state.snapshot() is None


def test_a_snapshot_drops_what_it_covers_even_without_its_record() -> None:
    value = Value(b"v", B1)
    records, _ = records_of(ready(accepted=(Accepted(1, B1, value), Accepted(5, B1, value)),
                                  decided=(Decision(1, value),)))
    snapshot = Snapshot(SnapshotMeta(3), b"state")
    state = recover(records, encode_snapshot_file(snapshot))
    assert state.snapshot() == snapshot
    assert [t.slot for t in state.accepted()] == [5] and state.decided() == []


def test_a_compaction_without_its_snapshot_is_refused() -> None:
    _, compaction = PaxosFormat().encode_snapshot(Snapshot(SnapshotMeta(3), b"s"))
    with pytest.raises(PaxosRecoveryError):
        recover([Record(0, kind, body) for kind, body in compaction], None)


def test_a_promise_that_goes_back_on_disk_is_refused() -> None:
    records, _ = records_of(ready(promised=B2), ready(promised=B1))
    with pytest.raises(PaxosRecoveryError):
        recover(records, None)
