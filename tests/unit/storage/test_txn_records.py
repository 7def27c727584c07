"""Transaction records in the node's WAL: tagged with their instance, replayed in order
after a restart, beside the groups' own records."""

from pathlib import Path

from distlab.storage import FileSharedLog, LogEntry


def test_txn_records_survive_a_restart_in_order_per_instance(tmp_path: Path) -> None:
    log = FileSharedLog.open(tmp_path / "wal", groups=1)
    log.group(0).append([LogEntry(term=1, index=1, kind=0, data=b"entry")])
    log.append_txn([(1, b"prepared"), (3, b"committed")])
    log.append_txn([(5, b"other instance")], instance=1)
    log.sync()
    log.close()

    reopened = FileSharedLog.open(tmp_path / "wal", groups=1)
    try:
        assert reopened.txn_records() == [(1, b"prepared"), (3, b"committed")]
        assert reopened.txn_records(1) == [(5, b"other instance")]
        assert reopened.group(0).last_index() == 1
    finally:
        reopened.close()
