from __future__ import annotations

import json

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    ChainMaster,
    admit_command,
    decode_result,
    init_command,
    join_command,
    promote_command,
    remove_command,
    renew_command,
    retire_command,
)

N1, N2, N3, N4 = NodeId(1), NodeId(2), NodeId(3), NodeId(4)


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


def test_a_retired_member_leaves_the_chain_at_once_and_is_kept_out() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, renew_command(N2))
    # No lease has to run out: the chain drops it in the next epoch.
    config, outcome = decode_result(master.apply(2, retire_command(N2)))
    assert outcome == "ok" and config.chain == (N1, N3) and config.epoch == 2
    config, outcome = decode_result(master.apply(3, join_command(N2)))
    assert outcome == "n2 is retired: it left the cluster"
    assert config.chain == (N1, N3) and config.joining is None and config.epoch == 2
    _, outcome = decode_result(master.apply(4, renew_command(N2)))
    assert outcome == "n2 is retired: it left the cluster" and master.renewals[N2] == 1
    # Said again (a retry whose first answer was lost), it changes nothing.
    config, outcome = decode_result(master.apply(5, retire_command(N2)))
    assert outcome == "ok" and config.epoch == 2 and master.retired == {N2}


def test_a_retired_replica_gives_up_its_place_as_the_joining_or_a_waiting_one() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, join_command(N2))
    master.apply(2, join_command(N3))
    assert master.config.joining == N2 and master.waiting == [N3]
    config, outcome = decode_result(master.apply(3, retire_command(N3)))
    assert outcome == "ok" and master.waiting == [] and config.epoch == 3
    config, outcome = decode_result(master.apply(4, retire_command(N2)))
    assert outcome == "ok" and config.chain == (N1,) and config.joining is None
    assert config.epoch == 4 and master.retired == {N2, N3}


def test_the_chains_last_replica_is_not_retired() -> None:
    master = master_of(N1, N2)
    master.apply(1, retire_command(N1))
    config, outcome = decode_result(master.apply(2, retire_command(N2)))
    assert outcome == "the chain's last replica stays" and config.chain == (N2,)
    # Not remembered either: the chain's state lives on in it, so its lease must hold.
    assert master.retired == {N1}
    _, outcome = decode_result(master.apply(3, renew_command(N2)))
    assert outcome == "ok"


def test_an_admitted_node_joins_as_the_new_tail() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, retire_command(N2))
    _, outcome = decode_result(master.apply(2, admit_command(N2)))
    assert outcome == "ok" and master.retired == set()
    config, outcome = decode_result(master.apply(3, join_command(N2)))
    assert outcome == "ok" and config.chain == (N1, N3) and config.joining == N2
    config, _ = decode_result(master.apply(4, promote_command(N2, config.epoch)))
    assert config.chain == (N1, N3, N2)
    # A node the cluster gains was never retired: admitting it changes nothing.
    config, outcome = decode_result(master.apply(5, admit_command(N4)))
    assert outcome == "ok" and config == master.config and master.retired == set()


def test_a_node_retired_before_the_first_chain_is_left_out_of_it() -> None:
    master = ChainMaster()
    _, outcome = decode_result(master.apply(1, retire_command(N3)))
    assert outcome == "ok" and master.config.epoch == 0
    config, _ = decode_result(master.apply(2, init_command([N1, N2, N3])))
    assert config.chain == (N1, N2) and config.epoch == 1
    _, outcome = decode_result(master.apply(3, retire_command(NodeId(0))))
    assert outcome == "malformed command"


def test_the_retired_go_into_the_snapshot_and_an_older_snapshot_has_none() -> None:
    master = master_of(N1, N2, N3)
    master.apply(1, retire_command(N3))
    copy = ChainMaster()
    copy.restore(master.snapshot())
    assert copy.retired == {N3} and copy.config == master.config
    older = json.loads(master.snapshot())
    del older["retired"]
    copy.restore(json.dumps(older).encode())
    assert copy.retired == set() and copy.config == master.config
