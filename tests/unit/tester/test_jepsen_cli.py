"""`distlab test` refuses bad usage with status 2 and one line, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from distlab.cli.main import main


def run_main(*args: str) -> int:
    try:
        return main(["test", *args])
    except SystemExit as exit_:  # argparse's own errors
        assert isinstance(exit_.code, int)
        return exit_.code


@pytest.mark.parametrize(("args", "message"), [
    (["--mix", "get=1,read=1"], "unknown function 'read'"),
    (["--mix", "get=0"], "no function a positive weight"),
    (["--nemesis", "explode"], "unknown fault 'explode'"),
    (["--nemesis", "kill,none"], "cannot be combined"),
    (["--time-limit", "5", "--nemesis-interval", "10"], "no fault fits"),
    (["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3", "--nemesis", "kill"],
     "kill, pause and txn-crash need node processes"),
    (["--nemesis", "txn-crash"], "use them with --workload bank"),
    (["--workload", "bank", "--nemesis", "txn-crash-bogus"], "unknown fault 'txn-crash-bogus'"),
    (["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3", "--workload", "bank",
      "--nemesis", "txn-crash"], "kill, pause and txn-crash need node processes"),
    (["--cluster", "nonsense"], "--cluster"),
    (["--nodes", "0"], "--nodes must be between 1 and 9"),
    (["--nodes", "1", "--nemesis", "partition"], "at least 3 nodes"),
    (["--groups", "0"], "--groups must be between 1 and"),
    (["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3", "--groups", "2"],
     "a running cluster keeps its own groups"),
    (["--engine", "zab"], "invalid choice: 'zab'"),
    (["--read-mode", "craq"], "--read-mode is for --system chain"),
    (["--system", "chain", "--mix", "get=1,append=1"], "unknown function 'append'"),
    (["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3", "--engine", "paxos"],
     "a running cluster keeps its own engine"),
    (["--concurrency", "0"], "--concurrency must be at least 1"),
    (["--keys", "0"], "--keys must be at least 1"),
    (["--time-limit", "-3"], "must be positive"),
    (["--rate", "fast"], "not a number"),
    (["--clock-skews", "0,1"], "--clock-skews: 2 offsets for 3 nodes"),
    (["--clock-skews", "0,x,1"], "'x' is not a number of milliseconds"),
    (["--cluster", "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3", "--clock-skews", "0,0,0"],
     "a running cluster keeps its own"),
    (["--workload", "external-consistency", "--participants", "nodes"],
     "runs over groups"),
    (["--workload", "external-consistency", "--protocol", "3pc"], "3PC assigns no timestamps"),
    (["--workload", "external-consistency", "--groups", "1"], "needs at least 2 groups"),
    (["--workload", "external-consistency", "--accounts", "5"],
     "--accounts must be at least 6 (2 per group)"),
    (["--workload", "external-consistency", "--system", "chain"],
     "it does not run on --system chain"),
])
def test_bad_usage_exits_2_with_a_reason(args: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(*args, "--report", str(tmp_path / "report")) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "report").exists(), "nothing may start on bad usage"


def test_a_report_directory_that_holds_a_run_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "history.jsonl").write_text("")
    assert run_main("--report", str(tmp_path)) == 2
    assert "already holds a run" in capsys.readouterr().err
