"""Every history of Porcupine's test data gets the verdict Porcupine's own tests assert.

The expected verdicts are read from the table in tests/data/porcupine/EXPECTED.md.
"""

from __future__ import annotations

import re
import resource

import pytest

from distlab.check import Verdict, check, read_edn_log, read_jepsen_log
from tests.unit.check.lincheck_support import DATA

TWO_GIB = 2 * 2**30


def expected_etcd() -> dict[str, bool]:
    table = (DATA / "EXPECTED.md").read_text()
    verdicts = {name: word == "true" for name, word in
                re.findall(r"^\| (etcd_\d+\.log) .*?\*\*(true|false)\*\*", table, re.M)}
    assert len(verdicts) == 102
    return verdicts


ETCD = expected_etcd()
KV = {"c01-ok": True, "c01-bad": False, "c10-ok": True, "c10-bad": False,
      "c50-ok": True, "c50-bad": False}


def verdict_of(linearizable: bool) -> Verdict:
    return Verdict.LINEARIZABLE if linearizable else Verdict.NOT_LINEARIZABLE


def test_the_table_lists_23_linearizable_etcd_histories() -> None:
    assert sum(ETCD.values()) == 23


@pytest.mark.parametrize("name", sorted(ETCD))
def test_jepsen_etcd_log(name: str) -> None:
    history = read_jepsen_log(DATA / "jepsen" / name)
    result = check(history, "cas-register", max_memory_bytes=TWO_GIB)
    assert result.verdict is verdict_of(ETCD[name]), result.reason
    if not ETCD[name]:
        violation = result.violation
        assert violation is not None and violation.outcome is not None
        assert violation.outcome.stuck, "a violation names the operation that breaks"


def test_the_empty_etcd_log_is_an_empty_history() -> None:
    history = read_jepsen_log(DATA / "jepsen" / "etcd_095.log")
    assert history.operations == ()
    assert check(history).verdict is Verdict.LINEARIZABLE


@pytest.mark.parametrize("name", sorted(KV))
def test_kv_log_partitioned_per_key(name: str) -> None:
    history = read_edn_log(DATA / "kv" / f"{name}.txt")
    result = check(history, "kv", max_memory_bytes=TWO_GIB)
    assert result.verdict is verdict_of(KV[name]), result.reason
    assert len(result.partitions) == len(history.keys)


@pytest.mark.parametrize("name", ["c01-ok", "c01-bad", "c10-ok", "c10-bad"])
def test_kv_log_as_one_object(name: str) -> None:
    history = read_edn_log(DATA / "kv" / f"{name}.txt")
    result = check(history, "kv", partition=False, max_memory_bytes=TWO_GIB)
    assert result.verdict is verdict_of(KV[name]), result.reason
    assert len(result.partitions) == 1


def test_c50_bad_is_found_within_two_gib_of_memory() -> None:
    history = read_edn_log(DATA / "kv" / "c50-bad.txt")
    result = check(history, "kv", max_memory_bytes=TWO_GIB)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.peak_memory_estimate < TWO_GIB
    # The whole test process, whatever ran before, never held 2 GiB (ru_maxrss is in KiB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < TWO_GIB
