"""`distlab txn exec`: bad operations and a cluster nobody serves are usage errors (exit 2),
said in one line."""

import pytest

from distlab.cli.main import main


@pytest.mark.parametrize("op, problem", [
    ("require:a", "expected require:K>=N"),
    ("add:a=x", "is not an integer"),
    ("take:a", "unknown kind"),
    ("put:=1", "the key is empty"),
])
def test_a_bad_operation_is_refused(op: str, problem: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["txn", "exec", op, "--cluster", "1=127.0.0.1:1"]) == 2
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize("participants", ["groups", "nodes"])
def test_no_node_accepting_a_connection_is_said_at_once(
        participants: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["txn", "exec", "get:a", "--participants", participants,
                 "--cluster", "1=127.0.0.1:1"]) == 2
    assert "never sent" in capsys.readouterr().err
