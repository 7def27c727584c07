"""The `distlab` entry point: each sub-command's module is imported only when it is invoked."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from distlab.cli import main


def registered_commands(parser: argparse.ArgumentParser) -> set[str]:
    (subparsers,) = [action for action in parser._actions
                     if isinstance(action, argparse._SubParsersAction)]
    return set(subparsers.choices)


@pytest.mark.parametrize("command", sorted(main.COMMANDS))
def test_each_module_registers_the_command_it_is_listed_under(command: str) -> None:
    assert registered_commands(main.build_parser(command)) == {command}


def test_without_a_command_every_command_is_registered() -> None:
    assert registered_commands(main.build_parser()) == set(main.COMMANDS)


def test_a_command_imports_only_its_own_module() -> None:
    probe = (
        "import sys\n"
        "from distlab.cli import main\n"
        "main.build_parser(main.invoked_command(['lincheck', 'history.jsonl']))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('grpc', 'distlab.runtime'))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               check=True)
    assert completed.stdout.strip() == "[]"


def test_an_unknown_command_is_a_usage_error_listing_the_commands(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main.main(["no-such-command"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'no-such-command'" in error
    for command in main.COMMANDS:
        assert repr(command) in error
