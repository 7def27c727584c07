"""KVClient against real KV servers: leader finding, safe retries, three-way outcomes."""

from __future__ import annotations

import asyncio

import pytest

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine
from distlab.client import (
    Indefinite,
    InvalidRequest,
    KVClient,
    Rejected,
    Unavailable,
    Unreachable,
)
from distlab.core.replicated_log import OutcomeUnknown
from distlab.core.status import EngineStatus
from distlab.ops.local_cluster import free_loopback_ports
from tests.unit.kv.kv_harness import (
    FollowerLog,
    LosesLeadershipLog,
    SingleMemberLog,
    StuckLog,
    kv_server,
    operation_of,
)


async def test_operations_round_trip() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address]) as client:
        assert await client.get("k") is None
        await client.put("k", "a")
        await client.append("k", "b")
        assert await client.get("k") == "ab"
        assert not await client.cas("k", "zz", "c")
        assert await client.cas("k", "ab", "c")
        assert await client.cas("fresh", None, "1")
        assert await client.delete("k")
        assert not await client.delete("k")
        assert await client.get("k") is None
        assert await client.get("fresh") == "1"


async def test_the_client_follows_the_leader_address_hint() -> None:
    machine = KVStateMachine()
    leader_log = SingleMemberLog(machine)
    async with kv_server(leader_log, machine) as leader:
        follower_log = FollowerLog(leader_id=2, leader_address=leader)
        async with kv_server(follower_log, KVStateMachine()) as follower, \
                KVClient([follower]) as client:
            await client.put("k", "v")
            assert await client.get("k") == "v"
            assert client.leader_address == leader
    # One refusal taught the client where the leader is; it did not go back.
    assert follower_log.calls == 1
    assert machine.get(b"k") == b"v"


async def test_the_leader_id_hint_is_resolved_through_the_clients_own_addresses() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as leader:
        # The follower names the leader by an address only the cluster's own network knows.
        follower_log = FollowerLog(leader_id=3, leader_address="node3.invalid:7000")
        async with kv_server(follower_log, KVStateMachine()) as follower, \
                KVClient({1: follower, 3: leader}) as client:
            await client.put("k", "v")
            assert client.leader_address == leader
    assert machine.get(b"k") == b"v"


async def test_an_unknown_outcome_is_retried_with_the_same_request_id() -> None:
    machine = KVStateMachine()
    inner = SingleMemberLog(machine)
    async with kv_server(inner, machine) as address, KVClient([address]) as client:
        await client.put("k", "")
        flaky = LosesLeadershipLog(inner, failures=2, ops=["append"])
        async with kv_server(flaky, machine) as flaky_address, \
                KVClient([flaky_address]) as retrying:
            await retrying.append("k", "x")
    # The append reached the log three times (twice its outcome was lost) and was applied once.
    assert machine.get(b"k") == b"x"
    assert [operation_of(entry) for entry in inner.entries].count("append") == 3


async def test_an_unreachable_cluster_is_a_definite_failure_for_writes() -> None:
    ports = free_loopback_ports(2)
    async with KVClient([f"127.0.0.1:{port}" for port in ports], call_timeout=0.2,
                        operation_timeout=0.6) as client:
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.put("k", "v")


async def test_a_client_told_to_fail_at_once_does_when_every_member_refuses() -> None:
    ports = free_loopback_ports(2)
    async with KVClient([f"127.0.0.1:{port}" for port in ports], operation_timeout=600,
                        fail_when_unreachable=True) as client:
        # The budget is far beyond the test's own timeout: only failing at once passes.
        for operation in (client.get("k"), client.put("k", "v")):
            with pytest.raises(Unreachable, match="cannot connect to any member") as caught:
                await asyncio.wait_for(operation, 30)
            assert all(f"127.0.0.1:{port} (Connection refused)" in str(caught.value)
                       for port in ports)
            assert caught.value.definite


async def test_a_cluster_without_a_leader_is_a_definite_failure() -> None:
    async with kv_server(FollowerLog(None, None), KVStateMachine()) as address, \
            KVClient([address], operation_timeout=0.3) as client:
        with pytest.raises(Unavailable, match="not the leader"):
            await client.put("k", "v")


async def test_a_write_that_times_out_after_reaching_the_leader_is_indefinite() -> None:
    machine = KVStateMachine()
    stuck = StuckLog(SingleMemberLog(machine), commits=1)  # the session opens, then no more
    # Budgets with room for a loaded machine: the session must open within one of them.
    async with kv_server(stuck, machine) as address, \
            KVClient([address], call_timeout=0.5, operation_timeout=1.5) as client:
        with pytest.raises(Unavailable):
            await client.get("k")  # reads never take effect: definite
        with pytest.raises(Indefinite, match="may have been applied"):
            await client.put("k", "v")
    assert stuck.stuck_proposals >= 1


async def test_invalid_requests_fail_definitely_without_retries() -> None:
    machine = KVStateMachine()
    log = SingleMemberLog(machine)
    async with kv_server(log, machine) as address, KVClient([address]) as client:
        with pytest.raises(InvalidRequest, match="empty"):
            await client.put("", "v")
        await client.put("k", "x" * (kv.MAX_VALUE_BYTES // 2 + 1))
        with pytest.raises(Rejected, match="after the append is 1048577 bytes, above the limit"):
            await client.append("k", "y" * (kv.MAX_VALUE_BYTES // 2))
    assert machine.get(b"k") == b"x" * (kv.MAX_VALUE_BYTES // 2 + 1)


async def test_keys_and_values_are_bytes_and_str_stands_for_utf8() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address]) as client:
        await client.put(b"\xff", b"\xfe\x00")
        await client.put("clé", "välue")
        assert await client.get_bytes("\udcff") == b"\xfe\x00"
        assert await client.get(b"\xff") == "\udcfe\x00"
        assert await client.cas(b"\xff", "\udcfe\x00", b"\x80")
        assert await client.get_bytes("clé") == "välue".encode()
        with pytest.raises(InvalidRequest, match="key '\\\\ud800' is not encodable"):
            await client.put("\ud800", "v")
    assert machine.get(b"\xff") == b"\x80"
    assert machine.get("clé".encode()) == "välue".encode()


async def test_a_request_above_grpcs_message_limit_fails_definitely_at_once() -> None:
    machine = KVStateMachine()
    log = SingleMemberLog(machine)
    async with kv_server(log, machine) as address, \
            KVClient([address], operation_timeout=600) as client:
        with pytest.raises(InvalidRequest, match="too large"):
            await asyncio.wait_for(client.put("k", b"x" * (65 * 1024 * 1024)), 30)
    assert machine.get(b"k") is None


async def test_an_expired_session_is_replaced_when_nothing_was_applied() -> None:
    machine = KVStateMachine(max_sessions=1)
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address]) as first, KVClient([address]) as second:
        await first.put("a", "1")
        await second.put("b", "2")  # its session evicts the first client's
        await first.append("a", "+")
    assert machine.get(b"a") == b"1+"


class EvictsAfterApplying:
    """Applies a write, then lets another session evict the writer's, then reports the
    outcome as unknown: the retry finds the session gone and cannot know what happened."""

    def __init__(self, inner: SingleMemberLog) -> None:
        self.inner = inner
        self.armed = True

    async def propose(self, command: bytes) -> bytes:
        result = await self.inner.propose(command)
        if self.armed and b"payload" in command:
            self.armed = False
            await self.inner.propose(kv.open_session_command(999))
            raise OutcomeUnknown("stepped down")
        return result

    async def read_barrier(self) -> None:
        await self.inner.read_barrier()

    def status(self) -> EngineStatus:
        return self.inner.status()


async def test_an_expired_session_after_an_unknown_outcome_is_indefinite() -> None:
    machine = KVStateMachine(max_sessions=1)
    log = EvictsAfterApplying(SingleMemberLog(machine))
    async with kv_server(log, machine) as address, KVClient([address]) as client:
        with pytest.raises(Indefinite, match="session expired"):
            await client.append("k", "payload")
    assert machine.get(b"k") == b"payload"  # it had in fact happened


async def test_concurrent_writes_use_separate_sessions_and_all_apply_once() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address]) as client:
        await asyncio.gather(*(client.append("k", str(n)) for n in range(8)))
        await asyncio.gather(*(client.append("k", str(n)) for n in range(8)))
    value = machine.get(b"k")
    assert value is not None and sorted(value) == sorted(b"0123456701234567")
    assert 1 <= machine.session_count() <= 8
