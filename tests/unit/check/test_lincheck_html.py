"""The HTML report: one self-contained file showing where the history breaks."""

from __future__ import annotations

import re
from html import escape

from distlab.check import Verdict, check, read_edn_log, read_jepsen_log, render_html
from tests.unit.check.lincheck_support import DATA, history, op


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    for needle in ("http://", "https://", "<script", "<link", "<img", "<iframe", "url(",
                   "@import", " src="):
        assert needle not in page, needle


def test_violation_page_names_the_key_and_the_breaking_operation() -> None:
    h = history(op(1, "put", "apple", key="fruit-7", call=0, ret=1),
                op(2, "put", "pear", key="fruit-7", call=2, ret=3),
                op(3, "get", result="apple", key="fruit-7", call=4, ret=5),
                op(4, "put", "x", key="other", call=0, ret=1))
    result = check(h, "kv")
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    page = render_html(result)
    assert_self_contained(page)
    assert "fruit-7" in page
    outcome = result.violation.outcome if result.violation else None
    assert outcome is not None
    breaking = outcome.stuck[0]
    assert breaking.f == "get" and breaking.result == "apple"
    assert escape(breaking.describe()) in page
    assert "cannot be linearized" in page
    assert 'class="op breaking' in page
    assert 'class="break-rule"' in page
    # Each partition gets its own timeline, the violation's first, after a close-up of
    # the stretch where it breaks.
    assert page.count("<svg") == 3
    assert page.index("Around the break") < page.index("Whole history of this key")
    assert page.index("fruit-7") < page.index("key other")


def test_linearizable_page_shows_the_full_linearization() -> None:
    result = check(read_edn_log(DATA / "kv" / "c01-ok.txt"), "kv")
    page = render_html(result)
    assert_self_contained(page)
    assert "linearizable" in page
    assert 'class="op breaking' not in page and "break-rule\"" not in page
    assert page.count("<svg") == len(result.partitions) == 10
    operations = len(result.history.operations)
    assert len(re.findall(r'class="op linearized', page)) == operations


def test_etcd_violation_page_marks_the_break_point() -> None:
    result = check(read_jepsen_log(DATA / "jepsen" / "etcd_000.log"))
    page = render_html(result)
    assert_self_contained(page)
    outcome = result.partitions[0].outcome
    assert outcome is not None and not outcome.linearizable
    assert f"{len(outcome.linearization)} of 85 operations" in page
    assert escape(outcome.stuck[0].describe()) in page
    whole = page[page.index("Whole history of this key"):]
    assert whole.count('class="op linearized') == len(outcome.linearization)
    close_up = page[page.index("Around the break"):page.index("Whole history of this key")]
    assert 0 < close_up.count('class="op linearized') < len(outcome.linearization)
    assert close_up.count('class="op breaking') == 1


def test_long_values_are_shortened() -> None:
    long_value = "v" * 5000
    h = history(op(1, "put", long_value, call=0, ret=1), op(2, "get", result="w", call=2, ret=3))
    page = render_html(check(h, "kv"))
    assert long_value not in page
    assert "(5002 chars)" in page
