"""The layers of DESIGN §2: the protocol cores stay sans-I/O (no clock, no RNG, no event
loop, no network), and imports point one way,

    core <- protocols <- storage, apps, check, wire <- runtime, client, telemetry <- sim, ops <- cli

so a lower layer never imports a higher one, and the client never imports the runtime."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "distlab"
SANS_IO_PACKAGES = ("core", "protocols")
FORBIDDEN = {"asyncio", "grpc", "time", "random", "os", "opentelemetry", "socket", "threading"}

# Package -> its layer; a module may import packages of its own layer or lower ones. `sim`
# has its place before it exists.
LAYERS = {
    "core": 0,
    "protocols": 1,
    "storage": 2, "apps": 2, "check": 2, "wire": 2,
    "runtime": 3, "client": 3, "telemetry": 3,
    "sim": 4, "ops": 4,
    "cli": 5,
}
# Imports that the layers forbid although the target is not higher.
BANNED = {("client", "runtime")}
# Outside the layers: generated code (importing nothing of distlab but itself) and the root
# modules (the version, `python -m distlab`).
UNLAYERED = {"proto"}
# (importing module, imported module) pairs that break the direction today, each with the
# reason it is tolerated and until when. Empty: keep it so.
EXCEPTIONS: dict[tuple[str, str], str] = {}


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


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def distlab_imports(path: Path) -> set[str]:
    """Every distlab module `path` imports, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from distlab import cli` imports the package distlab.cli.
            found.update(f"{base}.{alias.name}" for alias in node.names if base == "distlab")
    return {name for name in found if name.split(".")[0] == "distlab"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def direction_violations(path: Path) -> list[str]:
    importer = module_name(path)
    own = layer_of(importer)
    if own is None:
        return []
    wrong = []
    for imported in sorted(distlab_imports(path)):
        target = layer_of(imported)
        if target is None or (importer, imported) in EXCEPTIONS:
            continue
        if LAYERS[target] > LAYERS[own] or (own, target) in BANNED:
            wrong.append(f"{importer} imports {imported} ({own} may not import {target})")
    return wrong


def layered_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] in LAYERS)


@pytest.mark.parametrize("path", layered_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_layers(path: Path) -> None:
    assert direction_violations(path) == []


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - set(LAYERS) - UNLAYERED == set()


def test_the_exceptions_still_exist() -> None:
    """An exception that no longer happens is removed, so the list only ever shrinks."""
    for importer, imported in EXCEPTIONS:
        path = next(p for p in layered_modules() if module_name(p) == importer)
        assert imported in distlab_imports(path), (importer, imported)


def test_the_direction_rule_sees_upward_and_banned_imports(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    root = tmp_path / "distlab"
    for package, source in {
        "core": "from distlab.runtime.config import Address\n",
        "client": "import distlab.runtime.loop\nfrom distlab.wire import group_of\n",
        "storage": "from ..cli import main\nfrom . import wal\n",
        "ops": "from distlab import cli, core\n",
    }.items():
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (root / package / "sample.py").write_text(source)
    monkeypatch.setattr(__name__ + ".SRC", root)
    found = {package: direction_violations(root / package / "sample.py")
             for package in ("core", "client", "storage", "ops")}
    assert found == {
        "core": ["distlab.core.sample imports distlab.runtime.config (core may not import "
                 "runtime)"],
        "client": ["distlab.client.sample imports distlab.runtime.loop (client may not import "
                   "runtime)"],
        "storage": ["distlab.storage.sample imports distlab.cli (storage may not import cli)"],
        "ops": ["distlab.ops.sample imports distlab.cli (ops may not import cli)"],
    }
