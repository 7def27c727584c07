"""A node's data directory: one shared WAL, stable state and snapshots per group, and the
move of a layout from before groups into group 0."""

import logging
import struct
from pathlib import Path

import pytest

from distlab.storage import (
    FileSnapshotStore,
    FileStableStore,
    LogEntry,
    StableState,
    StorageError,
    WriteAheadLog,
    crashed_node_storage,
    memory_node_storage,
    open_node_storage,
)
from distlab.storage import layout as layout_module
from distlab.storage.log_store import RECORD_ENTRY


def entries(first: int, last: int, term: int) -> list[LogEntry]:
    return [LogEntry(term, i, 0, f"{term}/{i}".encode()) for i in range(first, last + 1)]


def write_single_group_layout(root: Path) -> None:
    """What a node wrote before there were groups: untagged WAL records, stable state and
    snapshots at the root of its data directory."""
    legacy_entry = struct.Struct(">QQI")
    with WriteAheadLog.open(root / "wal") as wal:
        for index in range(1, 4):
            wal.append(RECORD_ENTRY, legacy_entry.pack(2, index, 0) + b"old")
    FileStableStore(root / "stable-state").save(StableState(2, 3, 1))
    FileSnapshotStore(root / "snapshots").save(1, 2, [1, 2, 3], [], b"state at 1")


def test_a_fresh_data_directory_gets_one_wal_and_a_directory_per_group(tmp_path: Path) -> None:
    storage = open_node_storage(tmp_path, groups=3)
    assert storage.groups == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group-0", "group-1", "group-2", "wal"]
    for group in range(3):
        assert (tmp_path / f"group-{group}" / "snapshots").is_dir()
        storage.group(group).stable.save(StableState(group + 1, group, 0))
        storage.group(group).snapshots.save(group + 5, 1, [1], [], f"group {group}".encode())
        storage.group(group).log.append(entries(1, group + 1, term=1))
    with pytest.raises(ValueError, match="outside"):
        storage.group(3)
    storage.close()
    storage = open_node_storage(tmp_path, groups=3)
    for group in range(3):
        stores = storage.group(group)
        assert stores.stable.load() == StableState(group + 1, group, 0)
        latest = stores.snapshots.open_latest()
        assert latest is not None
        assert latest.data == f"group {group}".encode()
        assert stores.log.last_index() == group + 1
        assert (tmp_path / f"group-{group}" / "stable-state").is_file()
    storage.close()


def test_one_node_sync_serves_every_group(tmp_path: Path, fsync_calls) -> None:
    storage = open_node_storage(tmp_path, groups=3)
    fsync_calls.reset()
    for group in range(3):
        storage.group(group).log.append(entries(1, 4, term=1))
    report = storage.sync()
    assert report is not None
    assert report.groups == (0, 1, 2)
    assert len(fsync_calls.files) == 1
    assert storage.shared_log.stats.fsyncs == 1
    assert storage.shared_log.durable_seq == storage.shared_log.written_seq == 12
    storage.close()


def test_the_single_group_layout_moves_into_group_zero_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_single_group_layout(tmp_path)
    synced_directories: list[Path] = []
    real_fsync_directory = layout_module.fsync_directory

    def recording_fsync_directory(directory: Path) -> None:
        synced_directories.append(directory)
        real_fsync_directory(directory)

    monkeypatch.setattr(layout_module, "fsync_directory", recording_fsync_directory)
    with caplog.at_level(logging.INFO, logger="distlab.storage"):
        storage = open_node_storage(tmp_path, groups=2)
    moves = [r.getMessage() for r in caplog.records if "single-group layout" in r.getMessage()]
    assert len(moves) == 1
    assert "stable-state and snapshots" in moves[0]
    assert not (tmp_path / "stable-state").exists()
    assert not (tmp_path / "snapshots").exists()
    assert {tmp_path, tmp_path / "group-0"} <= set(synced_directories)
    group_zero = storage.group(0)
    assert group_zero.stable.load() == StableState(2, 3, 1)
    latest = group_zero.snapshots.open_latest()
    assert latest is not None
    assert (latest.meta.last_index, latest.data) == (1, b"state at 1")
    assert group_zero.log.last_index() == 3
    assert storage.group(1).stable.load() == StableState()
    assert storage.group(1).snapshots.open_latest() is None
    assert storage.group(1).log.last_index() == 0
    storage.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="distlab.storage"):
        storage = open_node_storage(tmp_path, groups=2)
    assert "single-group layout" not in caplog.text
    assert storage.group(0).stable.load() == StableState(2, 3, 1)
    storage.close()


def test_a_move_cut_short_by_a_crash_is_finished_by_the_next_open(tmp_path: Path) -> None:
    write_single_group_layout(tmp_path)
    (tmp_path / "group-0").mkdir()
    (tmp_path / "stable-state").rename(tmp_path / "group-0" / "stable-state")
    storage = open_node_storage(tmp_path)
    assert storage.group(0).stable.load() == StableState(2, 3, 1)
    assert storage.group(0).snapshots.open_latest() is not None
    assert not (tmp_path / "snapshots").exists()
    storage.close()


def test_an_unfinished_stable_state_save_of_the_old_layout_is_removed(tmp_path: Path) -> None:
    write_single_group_layout(tmp_path)
    (tmp_path / "stable-state.tmp").write_bytes(b"half a save")
    storage = open_node_storage(tmp_path)
    assert not (tmp_path / "stable-state.tmp").exists()
    assert storage.group(0).stable.load() == StableState(2, 3, 1)
    storage.close()


def test_old_and_new_layout_side_by_side_is_refused(tmp_path: Path) -> None:
    write_single_group_layout(tmp_path)
    FileStableStore(tmp_path / "group-0" / "stable-state").save(StableState(9, 9, 9))
    with pytest.raises(StorageError, match="both exist"):
        open_node_storage(tmp_path)
    # Nothing moved, and the refused open released the WAL.
    assert (tmp_path / "stable-state").exists()
    (tmp_path / "stable-state").unlink()
    storage = open_node_storage(tmp_path)
    assert storage.group(0).stable.load() == StableState(9, 9, 9)
    storage.close()


def test_fewer_groups_than_the_wal_holds_are_refused(tmp_path: Path) -> None:
    storage = open_node_storage(tmp_path, groups=3)
    storage.group(2).log.append(entries(1, 1, term=1))
    storage.close()
    with pytest.raises(StorageError, match="group count must not shrink"):
        open_node_storage(tmp_path, groups=2)
    storage = open_node_storage(tmp_path, groups=3)
    assert storage.group(2).log.last_index() == 1
    storage.close()


def test_a_single_group_node_keeps_its_stores_by_their_old_names(tmp_path: Path) -> None:
    storage = open_node_storage(tmp_path)
    assert storage.log is storage.group(0).log
    assert storage.stable is storage.group(0).stable
    assert storage.snapshots is storage.group(0).snapshots
    storage.close()


def test_memory_node_storage_crashes_like_a_disk(tmp_path: Path) -> None:
    storage = memory_node_storage(2)
    storage.group(0).log.append(entries(1, 3, term=1))
    storage.group(1).log.append(entries(1, 2, term=1))
    storage.sync()
    storage.group(0).stable.save(StableState(4, 1, 0))
    storage.group(1).log.append(entries(3, 5, term=2))
    storage.group(0).log.append(entries(4, 4, term=1))
    survivor = crashed_node_storage(storage, keep_unsynced=2)
    assert survivor.group(0).stable.load() == StableState(4, 1, 0)
    assert survivor.group(0).log.last_index() == 3
    assert survivor.group(1).log.last_index() == 4
    assert survivor.shared_log.durable_seq == 7
    on_disk = open_node_storage(tmp_path)
    with pytest.raises(TypeError, match="in-memory"):
        crashed_node_storage(on_disk)
    on_disk.close()
