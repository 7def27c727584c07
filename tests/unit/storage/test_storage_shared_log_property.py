"""Property: the file shared log, through any mix of appends, truncations, compactions and
syncs on any of its groups, and restarts, holds exactly what the in-memory one holds, group
by group; tiny segments make rollovers and segment deletions constant."""

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distlab.storage import FileSharedLog, LogEntry, MemorySharedLog, SharedLog

SEGMENT_SIZE = 200
GROUPS = 3


def state_of(shared: SharedLog) -> list[tuple[object, ...]]:
    states = []
    for group in range(shared.groups):
        store = shared.group(group)
        states.append(
            (
                store.first_index(),
                store.last_index(),
                store.snapshot_position(),
                store.entries(store.first_index(), store.last_index() + 1),
            )
        )
    return states


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_file_shared_log_matches_the_memory_model(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        model = MemorySharedLog(GROUPS)
        shared = FileSharedLog.open(directory, groups=GROUPS, segment_size=SEGMENT_SIZE)
        terms = [1] * GROUPS
        try:
            for _ in range(data.draw(st.integers(1, 60), label="steps")):
                action = data.draw(
                    st.sampled_from(
                        ["append", "append", "append", "truncate", "compact", "restart", "sync"]
                    ),
                    label="action",
                )
                group = data.draw(st.integers(0, GROUPS - 1), label="group")
                expected, actual = model.group(group), shared.group(group)
                first, last = expected.first_index(), expected.last_index()
                if action == "append":
                    start = data.draw(st.integers(max(1, first - 2), last + 1), label="start")
                    count = data.draw(st.integers(1, 6), label="count")
                    terms[group] += data.draw(st.integers(0, 1), label="term step")
                    entries = [
                        LogEntry(
                            terms[group],
                            index,
                            group,
                            bytes([group]) * data.draw(st.integers(0, 30), label="size"),
                        )
                        for index in range(start, start + count)
                    ]
                    expected.append(entries)
                    actual.append(entries)
                elif action == "truncate":
                    from_index = data.draw(st.integers(first, last + 1), label="from")
                    expected.truncate_suffix(from_index)
                    actual.truncate_suffix(from_index)
                elif action == "compact":
                    index = data.draw(st.integers(first - 1, last + 3), label="snapshot index")
                    agrees = first - 1 <= index <= last and data.draw(st.booleans())
                    snapshot_term = expected.term(index) if agrees else terms[group] + 1
                    terms[group] = max(terms[group], snapshot_term)
                    expected.compact(index, snapshot_term)
                    actual.compact(index, snapshot_term)
                elif action == "restart":
                    model.sync()
                    model = model.crashed()
                    shared.close()
                    shared = FileSharedLog.open(
                        directory, groups=GROUPS, segment_size=SEGMENT_SIZE
                    )
                else:
                    actual.sync()
                    expected.sync()
                    assert actual.written_seq <= shared.durable_seq
                assert state_of(shared) == state_of(model)
            shared.close()
            shared = FileSharedLog.open(directory, groups=GROUPS, segment_size=SEGMENT_SIZE)
            model.sync()
            assert state_of(shared) == state_of(model.crashed())
        finally:
            shared.close()
