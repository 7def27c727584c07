from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    ChainConfig,
    LeaseMonitor,
    Update,
    durable,
    recover,
    remove_command,
)

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)
CONFIG = ChainConfig(4, (N1, N2), joining=N3)


def test_a_replica_silent_for_the_removal_time_is_proposed_for_removal_once() -> None:
    monitor = LeaseMonitor(removal_ticks=5)
    renewals = {N1: 1, N2: 1, N3: 1}
    proposed = []
    for tick in range(12):
        renewals[N1] += 1  # n1 renews every tick; n2 and n3 went quiet
        proposed.extend(monitor.tick(True, CONFIG, renewals))
        if tick == 5:
            assert proposed == [remove_command(N2, 1)]
    assert proposed[:2] == [remove_command(N2, 1), remove_command(N3, 1)]
    assert remove_command(N1, renewals[N1]) not in proposed


def test_a_new_leader_starts_every_count_afresh() -> None:
    monitor = LeaseMonitor(removal_ticks=3)
    renewals = {N1: 0, N2: 0}
    config = ChainConfig(1, (N1, N2))
    assert monitor.tick(True, config, renewals) == []
    assert monitor.tick(True, config, renewals) == []
    assert monitor.tick(False, config, renewals) == []  # deposed: forgets
    for _ in range(3):
        assert monitor.tick(True, config, renewals) == []
    assert monitor.tick(True, config, renewals) == [remove_command(N1, 0)]


def test_records_replay_into_the_replicas_state() -> None:
    first, second = Update(1, b"a", b"1"), Update(2, b"a", b"2")
    records = [(durable.EPOCH, durable.encode_epoch(3)),
               durable.update_record(first),
               durable.update_record(second)]
    stored = recover(records)
    assert stored.epoch == 3 and stored.last == 2 and stored.updates == [first, second]
    digest = durable.digest_after(durable.digest_after(0, first), second)
    reset = durable.encode_reset(7, digest, [Update(7, b"b", b"x")])
    stored = recover([*records, (durable.RESET, reset),
                      durable.update_record(Update(8, b"b", b"y"))])
    assert stored.base == 7 and stored.base_digest == digest and stored.last == 8
    assert stored.latest == {b"b": (7, b"x")} and stored.updates == [Update(8, b"b", b"y")]


def test_a_gap_in_the_records_is_refused() -> None:
    records = [durable.update_record(Update(2, b"a", b"1"))]
    try:
        recover(records)
    except ValueError as error:
        assert "follows 0" in str(error)
    else:
        raise AssertionError("a gap was accepted")


def test_a_snapshot_replays_to_the_state_it_was_taken_of() -> None:
    digest = durable.digest_after(0, Update(1, b"a", b"1"))
    stored = durable.StoredReplica(epoch=5, base=1, base_digest=digest,
                                   latest={b"a": (1, b"1")},
                                   updates=[Update(2, b"b", b"2"), Update(3, b"a", b"3")],
                                   restarted=True)
    data = durable.encode_snapshot(stored)
    assert durable.decode_snapshot(data) == stored
    later = recover([*durable.snapshot_records(stored),
                     durable.update_record(Update(4, b"c", b"4"))])
    assert later.last == 4 and later.base == 1


@pytest.mark.parametrize("cut", [1, 3, 7])
def test_a_snapshot_cut_short_does_not_parse(cut: int) -> None:
    data = durable.encode_snapshot(durable.StoredReplica(epoch=2, latest={b"k": (1, b"v")},
                                                         base=1))
    with pytest.raises(ValueError, match=r"chain (snapshot|record)"):
        durable.decode_snapshot(data[:-cut])
