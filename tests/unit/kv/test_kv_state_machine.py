"""The KV state machine: operation semantics, sessions, snapshots, bad commands."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine, SnapshotError, decode_result
from distlab.proto import kv_pb2


class Replica:
    """Applies commands at consecutive indexes, as a log would."""

    def __init__(self, machine: KVStateMachine | None = None) -> None:
        self.machine = machine if machine is not None else KVStateMachine()
        self.index = 0

    def apply(self, command: bytes) -> kv_pb2.KVResult:
        self.index += 1
        return decode_result(self.machine.apply(self.index, command))

    def open(self, client_id: int) -> None:
        assert self.apply(kv.open_session_command(client_id)).status == kv.OK


def test_get_of_a_missing_key_is_none() -> None:
    assert KVStateMachine().get(b"nothing") is None


def test_put_then_get_and_overwrite() -> None:
    replica = Replica()
    replica.open(7)
    assert replica.apply(kv.put_command(7, 1, b"k", b"v1")).status == kv.OK
    assert replica.machine.get(b"k") == b"v1"
    replica.apply(kv.put_command(7, 2, b"k", b"v2"))
    assert replica.machine.get(b"k") == b"v2"


def test_append_concatenates_and_a_missing_key_counts_as_empty() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.append_command(7, 1, b"k", b"ab"))
    assert replica.machine.get(b"k") == b"ab"
    replica.apply(kv.append_command(7, 2, b"k", b"cd"))
    assert replica.machine.get(b"k") == b"abcd"


def test_delete_reports_whether_the_key_existed() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"k", b"v"))
    first = replica.apply(kv.delete_command(7, 2, b"k"))
    second = replica.apply(kv.delete_command(7, 3, b"k"))
    assert (first.status, first.ok) == (kv.OK, True)
    assert (second.status, second.ok) == (kv.OK, False)
    assert replica.machine.get(b"k") is None


def test_compare_and_set_only_replaces_the_expected_value() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"k", b"a"))
    mismatch = replica.apply(kv.cas_command(7, 2, b"k", b"b", b"c"))
    assert (mismatch.status, mismatch.ok) == (kv.OK, False)
    assert replica.machine.get(b"k") == b"a"
    match = replica.apply(kv.cas_command(7, 3, b"k", b"a", b"c"))
    assert (match.status, match.ok) == (kv.OK, True)
    assert replica.machine.get(b"k") == b"c"


def test_compare_and_set_with_no_expected_value_requires_an_absent_key() -> None:
    replica = Replica()
    replica.open(7)
    assert replica.apply(kv.cas_command(7, 1, b"k", None, b"first")).ok
    assert not replica.apply(kv.cas_command(7, 2, b"k", None, b"second")).ok
    assert replica.machine.get(b"k") == b"first"
    # An empty expected value is a value, not absence.
    assert not replica.apply(kv.cas_command(7, 3, b"other", b"", b"x")).ok


def test_an_append_past_the_value_limit_changes_nothing() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"k", b"x" * kv.MAX_VALUE_BYTES))
    result = replica.apply(kv.append_command(7, 2, b"k", b"y"))
    assert result.status == kv.VALUE_TOO_LARGE
    assert replica.machine.get(b"k") == b"x" * kv.MAX_VALUE_BYTES


def test_a_retried_sequence_is_applied_once_and_its_result_replayed() -> None:
    replica = Replica()
    replica.open(7)
    first = replica.apply(kv.append_command(7, 1, b"k", b"x"))
    retry = replica.apply(kv.append_command(7, 1, b"k", b"x"))
    assert first == retry
    assert replica.machine.get(b"k") == b"x"
    # The replay is the stored result, even when the state has changed since.
    replica.open(8)
    replica.apply(kv.put_command(8, 1, b"d", b"v"))
    deleted = replica.apply(kv.delete_command(7, 2, b"d"))
    replica.apply(kv.put_command(8, 2, b"d", b"again"))
    assert replica.apply(kv.delete_command(7, 2, b"d")) == deleted
    assert replica.machine.get(b"d") == b"again"


def test_an_older_sequence_is_answered_as_stale() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"k", b"a"))
    replica.apply(kv.put_command(7, 2, b"k", b"b"))
    stale = replica.apply(kv.put_command(7, 1, b"k", b"a"))
    assert stale.status == kv.STALE_SEQUENCE
    assert replica.machine.get(b"k") == b"b"


def test_sequences_may_skip_numbers() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"k", b"a"))
    assert replica.apply(kv.put_command(7, 5, b"k", b"b")).status == kv.OK
    assert replica.machine.last_sequence(7) == 5


def test_a_write_without_an_open_session_is_refused() -> None:
    replica = Replica()
    result = replica.apply(kv.put_command(9, 1, b"k", b"v"))
    assert result.status == kv.SESSION_EXPIRED
    assert replica.machine.get(b"k") is None


def test_opening_an_open_session_keeps_its_history() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.append_command(7, 1, b"k", b"x"))
    replica.open(7)
    replica.apply(kv.append_command(7, 1, b"k", b"x"))
    assert replica.machine.get(b"k") == b"x"


def test_the_least_recently_used_session_expires_beyond_the_limit() -> None:
    replica = Replica(KVStateMachine(max_sessions=2))
    replica.open(1)
    replica.open(2)
    replica.apply(kv.put_command(1, 1, b"k", b"v"))  # session 1 is now the most recent
    replica.open(3)
    assert replica.machine.last_sequence(2) is None
    assert replica.machine.last_sequence(1) == 1
    assert replica.apply(kv.put_command(2, 1, b"k", b"late")).status == kv.SESSION_EXPIRED
    assert replica.machine.session_count() == 2


@pytest.mark.parametrize(
    "command",
    [
        b"\xff\xff\xff",                                   # not protobuf at all
        kv_pb2.KVCommand(client_id=1, sequence=1).SerializeToString(),  # no operation
        kv.put_command(0, 1, b"k", b"v"),                  # no session id
        kv.put_command(1, 0, b"k", b"v"),                  # no sequence
    ],
    ids=["garbage", "no-op", "no-client", "no-sequence"],
)
def test_an_undecodable_or_invalid_command_is_an_error_result(command: bytes) -> None:
    replica = Replica()
    replica.open(1)
    before = replica.machine.snapshot()
    result = replica.apply(command)
    assert result.status == kv.MALFORMED
    assert result.detail
    after = replica.machine.snapshot()
    # Only the applied index moved.
    restored = KVStateMachine()
    restored.restore(after)
    assert kv.read_snapshot_body(before).entries == kv.read_snapshot_body(after).entries
    assert replica.machine.last_sequence(1) == 0


def test_keys_and_values_are_any_bytes() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.put_command(7, 1, b"\xff\x00", b"\xc3\x28"))
    replica.apply(kv.append_command(7, 2, b"\xff\x00", b"\xfe"))
    assert replica.machine.get(b"\xff\x00") == b"\xc3\x28\xfe"
    assert replica.apply(kv.cas_command(7, 3, b"\xff\x00", b"\xc3\x28\xfe", b"\x80")).ok
    restored = KVStateMachine()
    restored.restore(replica.machine.snapshot())
    assert restored.get(b"\xff\x00") == b"\x80"


# Written by the build whose kv.proto declared keys and values `string`: an open session, a put
# of "clé" = "välue", an append of "!" and a cas of "k" from absent to "new", client 7; then the
# snapshot of the store they made. Protobuf encodes `string` and `bytes` alike, so both still
# read back.
STRING_FIELD_COMMANDS = ["08073a00", "080710011a0e0a04636cc3a9120676c3a46c7565",
                         "0807100222090a04636cc3a9120121", "0807100332080a016b1a036e6577"]
STRING_FIELD_SNAPSHOT = (
    "444c4b5601675d8abb000000290804120f0a04636cc3a9120776c3a46c75652112080a016b12036e65771a0a0807"
    "10031a0408011001")


def test_commands_and_snapshots_of_the_string_field_build_still_decode() -> None:
    replica = Replica()
    results = [replica.apply(bytes.fromhex(command)) for command in STRING_FIELD_COMMANDS]
    assert [result.status for result in results] == [kv.OK] * 4
    assert replica.machine.get("clé".encode()) == "välue!".encode()
    assert replica.machine.get(b"k") == b"new"
    assert replica.machine.snapshot() == bytes.fromhex(STRING_FIELD_SNAPSHOT)
    restored = KVStateMachine()
    restored.restore(bytes.fromhex(STRING_FIELD_SNAPSHOT))
    assert restored.get("clé".encode()) == "välue!".encode()
    assert restored.last_sequence(7) == 3


def test_sessions_survive_snapshot_and_restore() -> None:
    replica = Replica()
    replica.open(7)
    replica.apply(kv.append_command(7, 1, b"k", b"x"))
    restored = Replica(KVStateMachine())
    restored.machine.restore(replica.machine.snapshot())
    restored.index = replica.index
    assert restored.machine.applied_index == replica.index
    assert restored.apply(kv.append_command(7, 1, b"k", b"x")).status == kv.OK
    assert restored.machine.get(b"k") == b"x"
    assert restored.apply(kv.append_command(7, 0 + 2, b"k", b"y")).status == kv.OK
    assert restored.machine.get(b"k") == b"xy"


def test_snapshot_restores_the_session_expiry_order() -> None:
    original = Replica(KVStateMachine(max_sessions=2))
    original.open(1)
    original.open(2)
    original.apply(kv.put_command(1, 1, b"k", b"v"))
    restored = Replica(KVStateMachine(max_sessions=2))
    restored.machine.restore(original.machine.snapshot())
    for replica in (original, restored):
        replica.open(3)
    assert original.machine.last_sequence(2) is None
    assert restored.machine.last_sequence(2) is None
    assert restored.machine.last_sequence(1) == 1


def test_a_damaged_or_foreign_snapshot_is_refused_and_changes_nothing() -> None:
    replica = Replica()
    replica.open(1)
    replica.apply(kv.put_command(1, 1, b"k", b"v"))
    good = replica.machine.snapshot()
    target = KVStateMachine()
    flipped = good[:-1] + bytes([good[-1] ^ 0x01])
    for bad, message in [(flipped, "checksum"), (b"XXXX" + good[4:], "not a KV snapshot"),
                         (good[:4] + b"\x09" + good[5:], "version 9"), (good[:3], "too short"),
                         (good[:-1], "header says")]:
        with pytest.raises(SnapshotError, match=message):
            target.restore(bad)
    assert target.get(b"k") is None
    target.restore(good)
    assert target.get(b"k") == b"v"


KEYS = st.sampled_from([b"a", b"b", b"\xff"])
VALUES = st.binary(max_size=3)
OPS = st.one_of(
    st.tuples(st.just("open"), st.integers(1, 4)),
    st.tuples(st.just("put"), st.integers(1, 4), st.integers(0, 6), KEYS, VALUES),
    st.tuples(st.just("append"), st.integers(1, 4), st.integers(0, 6), KEYS, VALUES),
    st.tuples(st.just("delete"), st.integers(1, 4), st.integers(0, 6), KEYS),
    st.tuples(st.just("cas"), st.integers(1, 4), st.integers(0, 6), KEYS,
              st.one_of(st.none(), VALUES), VALUES),
    st.tuples(st.just("garbage"), st.binary(max_size=8)),
)


def encode(op: tuple[object, ...]) -> bytes:
    kind, *rest = op
    if kind == "open":
        return kv.open_session_command(*rest)  # type: ignore[arg-type]
    if kind == "garbage":
        return rest[0]  # type: ignore[return-value]
    builder = {"put": kv.put_command, "append": kv.append_command,
               "delete": kv.delete_command, "cas": kv.cas_command}[str(kind)]
    return builder(*rest)  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(OPS, max_size=40), cut=st.integers(0, 40))
def test_a_replica_restored_from_a_snapshot_midway_agrees_with_one_that_was_not(
    ops: list[tuple[object, ...]], cut: int
) -> None:
    steady = Replica(KVStateMachine(max_sessions=3))
    restarted = Replica(KVStateMachine(max_sessions=3))
    for position, op in enumerate(ops):
        if position == cut:
            fresh = KVStateMachine(max_sessions=3)
            fresh.restore(restarted.machine.snapshot())
            restarted.machine = fresh
        command = encode(op)
        assert steady.apply(command) == restarted.apply(command)
    assert steady.machine.snapshot() == restarted.machine.snapshot()
