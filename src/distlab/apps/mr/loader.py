"""Finding an application by short name, dotted module name or file path, and checking it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

BUILT_IN = ("wc", "indexer", "grep", "mtiming", "rtiming", "jobcount", "early_exit", "crash",
            "nocrash")

MapFunction = Callable[[str, str], Iterable[tuple[str, str]]]
ReduceFunction = Callable[[str, list[str]], str]


class AppError(ValueError):
    """An application that cannot be loaded or lacks map/reduce; the message is one line."""


@dataclass(frozen=True, slots=True)
class App:
    name: str
    map: MapFunction
    reduce: ReduceFunction
    combine: ReduceFunction | None


_loaded: dict[str, App] = {}


def is_path(reference: str) -> bool:
    return reference.endswith(".py") or "/" in reference


def canonical_reference(reference: str) -> str:
    """What to send to workers: absolute paths for files, full module names for built-ins."""
    reference = reference.strip()
    if is_path(reference):
        return str(Path(reference).resolve())
    if reference in BUILT_IN:
        return f"distlab.apps.mr.{reference}"
    return reference


def load_app(reference: str) -> App:
    """The application `reference` names; loaded once per process, so module state (such as
    jobcount's invocation counter) lives as long as the worker."""
    reference = canonical_reference(reference)
    cached = _loaded.get(reference)
    if cached is not None:
        return cached
    module = _import(reference)
    app = App(
        name=reference,
        map=cast(MapFunction, _function(module, reference, "map", required=True)),
        reduce=cast(ReduceFunction, _function(module, reference, "reduce", required=True)),
        combine=cast(ReduceFunction | None,
                     _function(module, reference, "combine", required=False)),
    )
    _loaded[reference] = app
    return app


def _import(reference: str) -> ModuleType:
    if is_path(reference):
        path = Path(reference)
        if not path.is_file():
            raise AppError(f"application file {reference} does not exist")
        name = f"distlab_mr_app_{abs(hash(reference)):x}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise AppError(f"application file {reference} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[name]
            raise AppError(f"application {reference} failed to load: {_one_line(error)}") from error
        return module
    try:
        return importlib.import_module(reference)
    except ModuleNotFoundError as error:
        raise AppError(
            f"application {reference!r} not found (a built-in: {', '.join(BUILT_IN)}; "
            "a dotted module name; or a .py file)"
        ) from error
    except Exception as error:
        raise AppError(f"application {reference} failed to load: {_one_line(error)}") from error


def _function(module: ModuleType, reference: str, name: str, required: bool
              ) -> Callable[..., object] | None:
    function = getattr(module, name, None)
    if function is None:
        if required:
            raise AppError(f"application {reference} has no {name}() function")
        return None
    if not callable(function):
        raise AppError(f"application {reference}: {name} is not a function")
    result: Callable[..., object] = function
    return result


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__
