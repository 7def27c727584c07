"""Snapshot stores: atomic writes, metadata, retention, corruption."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.storage import (
    CorruptSnapshotError,
    FileSnapshotStore,
    MemorySnapshotStore,
    SnapshotStore,
)


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SnapshotStore]:
    if request.param == "file":
        yield FileSnapshotStore(tmp_path)
    else:
        yield MemorySnapshotStore()


def test_no_snapshot_yet(store: SnapshotStore) -> None:
    assert store.open_latest() is None
    assert store.list_snapshots() == []


def test_write_then_read_with_metadata(store: SnapshotStore) -> None:
    meta = store.save(10, 2, voters=[1, 2, 3], learners=[4], data=b"state at 10")
    snapshot = store.open_latest()
    assert snapshot is not None
    assert snapshot.data == b"state at 10"
    assert snapshot.meta == meta
    assert (meta.last_index, meta.last_term) == (10, 2)
    assert (meta.voters, meta.learners) == ((1, 2, 3), (4,))
    assert meta.size == len(b"state at 10")


def test_newest_two_are_kept(store: SnapshotStore) -> None:
    for index in (10, 20, 30):
        store.save(index, 1, [1], [], f"state {index}".encode())
    assert [m.last_index for m in store.list_snapshots()] == [30, 20]
    latest = store.open_latest()
    assert latest is not None and latest.data == b"state 30"


def test_file_snapshots_survive_reopen_and_prune_files(tmp_path: Path, fsync_calls) -> None:
    store = FileSnapshotStore(tmp_path, retain=2)
    fsync_calls.reset()
    for index in (5, 15, 25):
        store.save(index, 3, [1, 2], [3], bytes(range(index)))
    assert len(list(tmp_path.glob("*.snap"))) == 2
    assert len(fsync_calls.files) == 3
    assert len(fsync_calls.directories) == 4  # three renames and one prune
    latest = FileSnapshotStore(tmp_path).open_latest()
    assert latest is not None
    assert latest.meta.last_index == 25
    assert latest.data == bytes(range(25))


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_newest_snapshot_raises_naming_the_file(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(10, 1, [1], [], b"older")
    store.save(20, 1, [1], [], b"newer")
    newest = max(tmp_path.glob("*.snap"))
    flip_last_byte(newest)
    with pytest.raises(CorruptSnapshotError, match="data checksum mismatch") as caught:
        store.open_latest()
    assert str(newest) in str(caught.value)


def test_fall_back_skips_a_corrupt_newest_snapshot_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(10, 1, [1], [], b"older")
    store.save(20, 1, [1], [], b"newer")
    flip_last_byte(max(tmp_path.glob("*.snap")))
    with caplog.at_level(logging.ERROR):
        snapshot = store.open_latest(fall_back=True)
    assert snapshot is not None and snapshot.data == b"older"
    assert "skipping damaged snapshot" in caplog.text


def test_corrupt_metadata_raises(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(10, 1, [1], [], b"data")
    path = next(tmp_path.glob("*.snap"))
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01  # inside the JSON metadata
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSnapshotError, match="metadata checksum mismatch"):
        store.list_snapshots()
    with pytest.raises(CorruptSnapshotError, match="metadata checksum mismatch"):
        store.open_latest()


def test_renamed_snapshot_file_is_detected(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(10, 1, [1], [], b"data")
    path = next(tmp_path.glob("*.snap"))
    path.rename(tmp_path / "snapshot-00000000000000000099-00000000000000000001.snap")
    with pytest.raises(CorruptSnapshotError, match="file name says index 99"):
        store.open_latest()


def test_unfinished_temporary_is_ignored_and_removed(tmp_path: Path) -> None:
    FileSnapshotStore(tmp_path).save(10, 1, [1], [], b"complete")
    leftover = tmp_path / "snapshot-00000000000000000020-00000000000000000001.snap.tmp"
    leftover.write_bytes(b"half written")
    store = FileSnapshotStore(tmp_path)
    assert not leftover.exists()
    latest = store.open_latest()
    assert latest is not None and latest.data == b"complete"
