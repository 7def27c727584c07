"""Stable state: atomic replacement and loud corruption."""

import os
from pathlib import Path

import pytest

from distlab.storage import CorruptStateError, FileStableStore, MemoryStableStore, StableState


def test_fresh_store_loads_zeros(tmp_path: Path) -> None:
    assert FileStableStore(tmp_path / "state").load() == StableState(0, 0, 0)
    assert MemoryStableStore().load() == StableState(0, 0, 0)


def test_saved_state_survives_reopen(tmp_path: Path) -> None:
    store = FileStableStore(tmp_path / "state")
    store.save(StableState(current_term=7, voted_for=3, commit_index=42))
    store.save(StableState(current_term=8, voted_for=0, commit_index=42))
    assert FileStableStore(tmp_path / "state").load() == StableState(8, 0, 42)


def test_save_writes_fsyncs_renames_and_fsyncs_the_directory(
    tmp_path: Path, fsync_calls
) -> None:
    store = FileStableStore(tmp_path / "state")
    store.save(StableState(1, 2, 3))
    assert len(fsync_calls.files) == 1
    assert len(fsync_calls.directories) == 1
    assert not (tmp_path / "state.tmp").exists()


def test_a_crash_before_the_rename_keeps_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStableStore(tmp_path / "state")
    store.save(StableState(5, 1, 10))

    def crash(source: object, target: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.save(StableState(6, 2, 11))
    monkeypatch.undo()
    assert (tmp_path / "state.tmp").exists()
    reopened = FileStableStore(tmp_path / "state")
    assert reopened.load() == StableState(5, 1, 10)
    assert not (tmp_path / "state.tmp").exists()


def test_a_flipped_byte_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    FileStableStore(path).save(StableState(9, 2, 5))
    data = bytearray(path.read_bytes())
    data[12] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStateError, match="checksum mismatch") as caught:
        FileStableStore(path)
    assert str(path) in str(caught.value)


def test_a_truncated_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "state"
    FileStableStore(path).save(StableState(9, 2, 5))
    os.truncate(path, 10)
    with pytest.raises(CorruptStateError, match="10 bytes"):
        FileStableStore(path)


def test_out_of_range_state_is_refused() -> None:
    with pytest.raises(ValueError, match="current_term"):
        StableState(current_term=-1)


def test_memory_store_round_trip() -> None:
    store = MemoryStableStore()
    store.save(StableState(3, 1, 2))
    assert store.load() == StableState(3, 1, 2)
