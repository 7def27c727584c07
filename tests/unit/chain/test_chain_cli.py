"""`distlab chain` refuses bad usage with status 2 and one line, before contacting anyone."""

from __future__ import annotations

import pytest

from distlab.cli.main import main

CLUSTER = ["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3"]


@pytest.mark.parametrize(("args", "message"), [
    (["get", "k", "--node", "2", *CLUSTER], "use it with --mode craq"),
    (["get", "k", "--node", "9", "--mode", "craq", *CLUSTER], "--node 9 is not a member"),
    (["put", "k", "v", "--timeout", "0", *CLUSTER], "--timeout must be positive"),
    (["get", "k", "--mode", "fast", *CLUSTER], "invalid choice: 'fast'"),
])
def test_bad_usage_is_one_line_and_status_2(args: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(["chain", *args])
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
