"""The coordinator's job log: records survive, a torn tail is cut, mid-file damage stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from distlab.runtime.mapreduce.joblog import LOG_NAME, JobLog, JobLogCorrupt, encode_record


def write_log(data_dir: Path, records: list[dict[str, object]]) -> Path:
    log = JobLog.open(data_dir)
    log.append(records)
    log.close()
    return data_dir / LOG_NAME


def test_records_round_trip(tmp_path: Path) -> None:
    records = [{"type": "start", "epoch": 1}, {"type": "submit", "job": 1, "spec": {"a": [1]}}]
    write_log(tmp_path, records)
    assert JobLog.open(tmp_path).recovered == records


@pytest.mark.parametrize("cut", [1, 5, 12])
def test_a_torn_tail_is_truncated(tmp_path: Path, cut: int) -> None:
    path = write_log(tmp_path, [{"type": "start", "epoch": 1}, {"type": "job_done", "job": 1}])
    intact = len(encode_record({"type": "start", "epoch": 1}))
    path.write_bytes(path.read_bytes()[:-cut])
    log = JobLog.open(tmp_path)
    assert log.recovered == [{"type": "start", "epoch": 1}]
    assert path.stat().st_size == intact
    log.append([{"type": "start", "epoch": 2}])
    log.close()
    assert JobLog.open(tmp_path).recovered[-1] == {"type": "start", "epoch": 2}


def test_a_last_record_failing_its_checksum_is_a_torn_tail(tmp_path: Path) -> None:
    path = write_log(tmp_path, [{"type": "start", "epoch": 1}, {"type": "job_done", "job": 1}])
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    assert JobLog.open(tmp_path).recovered == [{"type": "start", "epoch": 1}]


def test_damage_before_intact_records_stops_recovery(tmp_path: Path) -> None:
    path = write_log(tmp_path, [{"type": "start", "epoch": n} for n in range(3)])
    data = bytearray(path.read_bytes())
    data[12] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JobLogCorrupt, match=r"jobs.log: damaged record at byte offset 0"):
        JobLog.open(tmp_path)
