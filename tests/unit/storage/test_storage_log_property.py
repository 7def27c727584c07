"""Property: the file log store, through any mix of appends, truncations, compactions and
restarts, holds exactly what the in-memory store holds."""

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distlab.storage import FileLogStore, LogEntry, LogStore, MemoryLogStore

SEGMENT_SIZE = 200  # tiny, so rollovers and segment deletions happen constantly


def state_of(store: LogStore) -> tuple[object, ...]:
    return (
        store.first_index(),
        store.last_index(),
        store.snapshot_position(),
        store.entries(store.first_index(), store.last_index() + 1),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_file_store_matches_the_memory_model(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        model = MemoryLogStore()
        store = FileLogStore.open(directory, segment_size=SEGMENT_SIZE)
        term = 1
        try:
            for _ in range(data.draw(st.integers(1, 40), label="steps")):
                action = data.draw(
                    st.sampled_from(["append", "append", "append", "truncate", "compact",
                                     "restart", "sync"]),
                    label="action",
                )
                first, last = model.first_index(), model.last_index()
                if action == "append":
                    start = data.draw(st.integers(max(1, first - 2), last + 1), label="start")
                    count = data.draw(st.integers(1, 6), label="count")
                    term += data.draw(st.integers(0, 1), label="term step")
                    entries = [
                        LogEntry(term, index, index % 3, b"d" * data.draw(st.integers(0, 30)))
                        for index in range(start, start + count)
                    ]
                    model.append(entries)
                    store.append(entries)
                elif action == "truncate":
                    from_index = data.draw(st.integers(first, last + 1), label="from")
                    model.truncate_suffix(from_index)
                    store.truncate_suffix(from_index)
                elif action == "compact":
                    index = data.draw(st.integers(first - 1, last + 3), label="snapshot index")
                    agrees = first - 1 <= index <= last and data.draw(st.booleans())
                    snapshot_term = model.term(index) if agrees else term + 1
                    term = max(term, snapshot_term)
                    model.compact(index, snapshot_term)
                    store.compact(index, snapshot_term)
                elif action == "restart":
                    model.sync()
                    model = model.crashed()
                    store.close()
                    store = FileLogStore.open(directory, segment_size=SEGMENT_SIZE)
                else:
                    model.sync()
                    store.sync()
                assert state_of(store) == state_of(model)
            store.close()
            store = FileLogStore.open(directory, segment_size=SEGMENT_SIZE)
            model.sync()
            assert state_of(store) == state_of(model.crashed())
        finally:
            store.close()
