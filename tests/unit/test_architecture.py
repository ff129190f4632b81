"""The layering of SPEC §1 as a test: the core stays pure, imports point downward."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

CORE = Path(__file__).resolve().parents[2] / "src" / "onex_actors" / "core"
IO_MODULES = {
    "trio",
    "trio_util",
    "trio_asyncio",
    "asyncio",
    "anyio",
    "httpx",
    "httpx2",
    "asyncpg",
    "kafka",
    "yaml",
    "os",
    "io",
    "socket",
    "ssl",
    "subprocess",
    "pathlib",
    "shutil",
    "tempfile",
    "threading",
    "signal",
    "urllib",
    "http",
    "importlib",
    "builtins",
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    forbidden = imported_roots(path) & (IO_MODULES | {"onex_actors"})
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}; the core must stay pure"


def test_core_calls_no_open() -> None:
    for module in CORE.glob("*.py"):
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & {"open", "exec", "eval", "__import__", "input", "print"}, module.name


def test_import_linter_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORE.parents[2])
    loggers = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    try:
        assert lint_imports(no_cache=True) == 0
    finally:
        # import-linter configures logging with disable_existing_loggers: undo that, or
        # every later test that reads the log of a module imported by now sees nothing
        for logger in loggers:
            logger.disabled = False


def test_the_delivery_mode_is_read_only_where_the_strategy_is_chosen() -> None:
    """``delivery.mode`` is read by the config and the strategy selection, nowhere else."""
    source = CORE.parent
    allowed = {source / "app" / "_config.py", source / "app" / "_delivery_choice.py"}
    readers = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "mode"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "delivery"
            ):
                readers.add(path)
    assert readers - allowed == set()
    assert source / "app" / "_delivery_choice.py" in readers
