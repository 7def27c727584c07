"""The protocol cores stay sans-I/O: they import no clock, no RNG, no event loop, no network."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "distlab"
SANS_IO_PACKAGES = ("core", "protocols")
FORBIDDEN = {"asyncio", "grpc", "time", "random", "os", "opentelemetry", "socket", "threading"}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, wherever the import statement is."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def sans_io_modules() -> list[Path]:
    return sorted(p for package in SANS_IO_PACKAGES for p in (SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", sans_io_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_and_protocols_do_no_io(path: Path) -> None:
    forbidden = imported_roots(path) & FORBIDDEN
    assert not forbidden, f"{path.relative_to(SRC)} imports {sorted(forbidden)}"


def test_the_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os.path\nfrom time import monotonic\n"
        "if False:\n    import asyncio\n"
        "def f():\n    import grpc.aio\n    return __import__('random')\n"
    )
    assert imported_roots(sample) >= {"os", "time", "asyncio", "grpc", "random"}
