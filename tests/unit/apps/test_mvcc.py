"""The multi-version store: versions by commit timestamp, safe time, prepares, GC, snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distlab.apps.mvcc import (
    MVCCError,
    MVCCStore,
    ReadBelowHorizon,
    ReadNotSafe,
    SnapshotError,
    TimestampError,
)


def test_read_at_sees_the_newest_version_at_or_below_the_timestamp() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    store.write(b"k", b"b", 20)
    store.write(b"k", None, 30)
    store.write(b"k", b"c", 40)
    assert [store.read_at(b"k", ts) for ts in (9, 10, 19, 20, 29, 30, 39, 40)] == [
        None, b"a", b"a", b"b", b"b", None, None, b"c"]
    assert store.read_at(b"other", 40) is None
    assert store.latest(b"k") == b"c"
    assert store.latest_ts(b"k") == 40


def test_a_write_at_or_below_the_keys_newest_version_is_refused() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    for ts in (10, 5):
        with pytest.raises(TimestampError, match="not above key b'k''s newest version at 10"):
            store.write(b"k", b"b", ts)
    assert store.versions(b"k") == [(10, b"a")]


def test_writes_come_above_the_safe_time_so_answered_reads_stay_answered() -> None:
    store = MVCCStore()
    store.write(b"a", b"1", 100)
    assert store.read_at(b"b", 60) is None
    with pytest.raises(TimestampError, match="not above the safe time 100"):
        store.write(b"b", b"1", 50)
    assert store.read_at(b"b", 60) is None


def test_a_read_above_the_safe_time_is_refused_until_time_advances() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    with pytest.raises(ReadNotSafe, match="cannot read at 11 yet: the safe time is 10"):
        store.read_at(b"k", 11)
    store.advance_safe_time(50)
    assert store.read_at(b"k", 50) == b"a"
    store.advance_safe_time(20)  # an older promise changes nothing
    assert store.safe_time() == 50
    with pytest.raises(TimestampError):
        store.write(b"k", b"b", 50)


def test_a_pending_prepare_holds_the_safe_time_below_its_prepare_timestamp() -> None:
    store = MVCCStore()
    store.write(b"x", b"0", 10)
    store.prepare(b"t1", 20, {b"k": b"v"})
    store.advance_safe_time(100)
    assert store.safe_time() == 19
    assert store.read_at(b"k", 19) is None
    with pytest.raises(ReadNotSafe):
        store.read_at(b"k", 20)
    store.commit(b"t1", 25)
    assert store.safe_time() == 100
    assert store.read_at(b"k", 24) is None
    assert store.read_at(b"k", 25) == b"v"


def test_commits_of_prepared_transactions_may_land_out_of_timestamp_order() -> None:
    store = MVCCStore()
    store.prepare(b"t1", 10, {b"a": b"1"})
    store.prepare(b"t2", 20, {b"b": b"2"})
    store.commit(b"t2", 30)
    assert store.safe_time() == 9
    store.commit(b"t1", 15)
    assert store.safe_time() == 30
    assert (store.read_at(b"a", 15), store.read_at(b"b", 29)) == (b"1", None)


def test_prepare_and_commit_refuse_what_would_rewrite_the_past() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    with pytest.raises(TimestampError, match="not above the safe time 10"):
        store.prepare(b"t", 10, {b"k": b"b"})
    store.prepare(b"t", 11, {b"k": b"b", b"j": None})
    with pytest.raises(MVCCError, match="already prepared"):
        store.prepare(b"t", 12, {b"z": b"z"})
    with pytest.raises(MVCCError, match="prepared by transaction b't'"):
        store.prepare(b"u", 12, {b"k": b"c"})
    with pytest.raises(MVCCError, match="prepared by transaction"):
        store.write(b"k", b"c", 12)
    with pytest.raises(TimestampError, match="below transaction b't''s prepare timestamp 11"):
        store.commit(b"t", 10)
    with pytest.raises(MVCCError, match="not prepared here"):
        store.commit(b"nobody", 12)
    assert store.abort(b"t") is True
    assert store.abort(b"t") is False
    assert store.prepared() == []
    assert store.latest(b"k") == b"a"
    store.write(b"k", b"c", 12)


def test_gc_keeps_the_newest_version_at_or_below_the_horizon() -> None:
    store = MVCCStore()
    store.write(b"gone", b"x", 5)
    for ts, value in ((10, b"a"), (20, b"b"), (30, b"c")):
        store.write(b"k", value, ts)
    store.write(b"gone", None, 31)
    store.collect_garbage(25)
    assert store.read_at(b"gone", 30) == b"x"
    store = MVCCStore()
    store.write(b"gone", b"x", 5)
    store.write(b"k", b"a", 10)
    store.write(b"gone", None, 15)
    store.write(b"k", b"b", 20)
    store.write(b"k", b"c", 30)
    assert store.collect_garbage(25) == 3
    assert store.versions(b"k") == [(20, b"b"), (30, b"c")]
    assert store.keys() == [b"k"]
    assert [store.read_at(b"k", ts) for ts in (25, 29, 30)] == [b"b", b"b", b"c"]
    assert store.read_at(b"gone", 25) is None
    with pytest.raises(ReadBelowHorizon, match="below the garbage-collection horizon 25"):
        store.read_at(b"k", 24)
    assert store.collect_garbage(20) == 0  # the horizon never moves back
    assert store.horizon == 25
    with pytest.raises(MVCCError, match="above the safe time 30"):
        store.collect_garbage(31)


def test_collect_older_than_a_retention_window() -> None:
    store = MVCCStore()
    for ts in range(10, 110, 10):
        store.write(b"k", str(ts).encode(), ts)
    assert store.collect_older_than(35) == 5  # horizon 65: keeps 60 and up
    assert store.versions(b"k")[0] == (60, b"60")
    with pytest.raises(MVCCError, match="at least 0 ns"):
        store.collect_older_than(-1)


def test_snapshot_restores_every_part_of_the_state() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    store.write(b"k", None, 20)
    store.write(b"j", b"", 30)
    store.collect_garbage(15)
    store.prepare(b"t", 40, {b"p": b"pv", b"q": None})
    data = store.snapshot()
    copy = MVCCStore.from_snapshot(data)
    assert copy.snapshot() == data
    assert copy.versions(b"k") == [(10, b"a"), (20, None)]
    assert (copy.horizon, copy.safe_time(), copy.prepared()) == (15, 30, store.prepared())
    copy.commit(b"t", 45)
    assert copy.read_at(b"p", 45) == b"pv"


def test_a_damaged_snapshot_is_refused_and_changes_nothing() -> None:
    store = MVCCStore()
    store.write(b"k", b"a", 10)
    data = bytearray(MVCCStore().snapshot())
    with pytest.raises(SnapshotError, match="too short"):
        store.restore(b"DL")
    with pytest.raises(SnapshotError, match="not an MVCC snapshot"):
        store.restore(b"XXXX" + bytes(data[4:]))
    data[-1] ^= 0xFF
    with pytest.raises(SnapshotError, match="checksum mismatch"):
        store.restore(bytes(data))
    assert store.latest(b"k") == b"a"


# ---- properties, against a naive model: every committed (key, ts, value) in a list; steps
# interleave writes, prepares, commits, aborts, safe-time promises and collections ----

KEYS = (b"a", b"b", b"c")
VALUES = st.one_of(st.none(), st.binary(max_size=3))

step = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(KEYS), VALUES, st.integers(1, 5)),
    st.tuples(st.just("prepare"), st.sampled_from(KEYS), VALUES, st.integers(1, 5)),
    st.tuples(st.just("commit"), st.integers(0, 3), st.integers(0, 5)),
    st.tuples(st.just("abort"), st.integers(0, 3)),
    st.tuples(st.just("advance"), st.integers(0, 5)),
    st.tuples(st.just("gc"), st.integers(0, 8)),
)


def naive_read(model: list[tuple[bytes, int, bytes | None]], key: bytes, ts: int
               ) -> bytes | None:
    seen = [(version_ts, value) for k, version_ts, value in model if k == key
            and version_ts <= ts]
    return max(seen, key=lambda item: item[0])[1] if seen else None


def run_steps(steps: list[tuple[object, ...]]) -> tuple[MVCCStore, list[tuple[bytes, int,
                                                                           bytes | None]]]:
    """Apply generated steps the way a correct transaction layer would issue them: each
    timestamp above the safe time and the key's newest version. Returns the store and the
    model of committed versions."""
    store = MVCCStore()
    model: list[tuple[bytes, int, bytes | None]] = []
    pending: list[bytes] = []
    number = 0
    for item in steps:
        kind = item[0]
        if kind in ("write", "prepare"):
            _, key, value, gap = item
            assert isinstance(key, bytes) and isinstance(gap, int)
            assert value is None or isinstance(value, bytes)
            if any(key == k for p in store.prepared() for k, _ in p.writes):
                continue
            ts = max(store.safe_time(), store.latest_ts(key) or 0) + gap
            if kind == "write":
                store.write(key, value, ts)
                model.append((key, ts, value))
            else:
                number += 1
                txn_id = b"t%d" % number
                store.prepare(txn_id, ts, {key: value})
                pending.append(txn_id)
        elif kind == "commit" and pending:
            _, which, gap = item
            assert isinstance(which, int) and isinstance(gap, int)
            txn_id = pending.pop(which % len(pending))
            prepared = next(p for p in store.prepared() if p.txn_id == txn_id)
            ((key, value),) = prepared.writes
            ts = max(prepared.prepare_ts, (store.latest_ts(key) or 0) + 1) + gap
            store.commit(txn_id, ts)
            model.append((key, ts, value))
        elif kind == "abort" and pending:
            _, which = item
            assert isinstance(which, int)
            assert store.abort(pending.pop(which % len(pending)))
        elif kind == "advance":
            _, gap = item
            assert isinstance(gap, int)
            store.advance_safe_time(store.max_applied + gap)
        elif kind == "gc":
            _, lag = item
            assert isinstance(lag, int)
            store.collect_garbage(store.safe_time() - lag)
    return store, model


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40))
def test_reads_see_exactly_the_newest_committed_version_at_or_below(
        steps: list[tuple[object, ...]]) -> None:
    store, model = run_steps(steps)
    for key in KEYS:
        for ts in range(0, store.safe_time() + 1):
            if ts < store.horizon:
                with pytest.raises(ReadBelowHorizon):
                    store.read_at(key, ts)
            else:
                assert store.read_at(key, ts) == naive_read(model, key, ts), (key, ts)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40), st.integers(0, 200))
def test_gc_never_changes_a_read_at_or_above_the_horizon(
        steps: list[tuple[object, ...]], horizon_seed: int) -> None:
    store, _ = run_steps(steps)
    safe = store.safe_time()
    horizon = max(store.horizon, horizon_seed % (safe + 1) if safe >= 0 else -1)
    before = {(key, ts): store.read_at(key, ts) for key in KEYS
              for ts in range(max(0, store.horizon), safe + 1)}
    store.collect_garbage(horizon)
    for (key, ts), value in before.items():
        if ts >= horizon:
            assert store.read_at(key, ts) == value
        else:
            with pytest.raises(ReadBelowHorizon):
                store.read_at(key, ts)
    for key in KEYS:
        older = [ts for ts, _ in store.versions(key) if ts <= horizon]
        assert len(older) <= 1


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40), st.integers(0, 50))
def test_snapshot_round_trip_gives_the_same_state_and_bytes(
        steps: list[tuple[object, ...]], horizon: int) -> None:
    store, _ = run_steps(steps)
    if store.horizon <= horizon <= store.safe_time():
        store.collect_garbage(horizon)
    data = store.snapshot()
    copy = MVCCStore()
    copy.write(b"junk", b"replaced", 1)
    copy.restore(data)
    assert copy.snapshot() == data
    assert (copy.safe_time(), copy.horizon, copy.prepared()) == (
        store.safe_time(), store.horizon, store.prepared())
    for key in KEYS:
        assert copy.versions(key) == store.versions(key)
