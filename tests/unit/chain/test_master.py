from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    ChainMaster,
    decode_result,
    init_command,
    join_command,
    promote_command,
    remove_command,
    renew_command,
)

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)


def master_of(*nodes: NodeId) -> ChainMaster:
    master = ChainMaster()
    master.apply(0, init_command(nodes))
    return master


def test_a_removal_raced_by_a_renewal_is_not_taken() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, renew_command(N2))
    config, outcome = decode_result(master.apply(2, remove_command(N2, 0)))
    assert outcome == "renewed since" and config.chain == (N1, N2, N3) and config.epoch == 1
    config, outcome = decode_result(master.apply(3, remove_command(N2, 1)))
    assert outcome == "ok" and config.chain == (N1, N3) and config.epoch == 2


def test_the_last_replica_stays() -> None:
    master = master_of(N1, N2)
    master.apply(1, remove_command(N1, 0))
    _, outcome = decode_result(master.apply(2, remove_command(N2, 0)))
    assert outcome == "the chain's last replica stays" and master.config.chain == (N2,)


def test_join_then_promote_appends_a_new_tail() -> None:
    master = master_of(N1, N2, N3)
    config, _ = decode_result(master.apply(1, join_command(N1)))
    assert config.chain == (N2, N3) and config.joining == N1 and config.epoch == 2
    # A second one leaves its place at once and waits its turn.
    config, outcome = decode_result(master.apply(2, join_command(N2)))
    assert outcome == "waiting behind n1" and master.waiting == [N2]
    assert config.chain == (N3,) and config.epoch == 3
    _, outcome = decode_result(master.apply(3, promote_command(N1, 2)))
    assert outcome == "not joining in that epoch"
    config, outcome = decode_result(master.apply(4, promote_command(N1, 3)))
    assert config.chain == (N3, N1) and config.joining == N2 and config.epoch == 4


def test_snapshot_restores_the_same_state_and_bad_commands_are_answered() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, renew_command(N3))
    master.apply(2, join_command(N2))
    copy = ChainMaster()
    copy.restore(master.snapshot())
    assert copy.config == master.config and copy.renewals == master.renewals
    _, outcome = decode_result(master.apply(3, b"not json"))
    assert outcome == "malformed command"


def test_every_member_starts_empty_and_takes_the_first_chain_from_the_log() -> None:
    master = ChainMaster()
    assert master.config.epoch == 0 and master.config.chain == ()
    _, outcome = decode_result(master.apply(1, join_command(N3)))
    assert outcome == "the chain is not set up yet"
    config, outcome = decode_result(master.apply(2, init_command([N2, N1])))
    assert outcome == "ok" and config.chain == (N1, N2) and config.epoch == 1
    _, outcome = decode_result(master.apply(3, init_command([N3])))
    assert outcome == "the chain is set up already" and master.config.chain == (N1, N2)
