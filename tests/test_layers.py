"""The import rules of docs/ARCHITECTURE.md: upper layers import lower ones, never back."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "opencomms"

# package -> prefixes its modules must never import
FORBIDDEN = {
    "domain": (
        "opencomms.api",
        "opencomms.store",
        "opencomms.dispatch",
        "opencomms.channels",
        "opencomms.cli",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "asyncpg",
        "aiosqlite",
        "httpx",
    ),
    "templating": (
        "opencomms.api",
        "opencomms.store",
        "opencomms.dispatch",
        "opencomms.channels",
        "fastapi",
        "sqlalchemy",
    ),
    "store": (
        "opencomms.api",
        "opencomms.cli",
        "opencomms.dispatch",
        "opencomms.channels",
        "fastapi",
    ),
    "channels": (
        "opencomms.store",
        "opencomms.api",
        "opencomms.cli",
        "opencomms.dispatch",
        "sqlalchemy",
        "fastapi",
    ),
    "dispatch": ("opencomms.api", "opencomms.cli", "fastapi", "starlette"),
    "api": ("opencomms.cli", "opencomms.dispatch"),
    # The service layer: what the API, the console and the CLI all do, below all three.
    "services": (
        "opencomms.api",
        "opencomms.console",
        "opencomms.cli",
        "opencomms.dispatch",
        "opencomms.channels",
        "fastapi",
        "starlette",
    ),
    # The console calls services and store functions; it never writes SQL itself.
    "console": (
        "opencomms.cli",
        "opencomms.dispatch",
        "opencomms.store.tables",
        "sqlalchemy",
        "asyncpg",
        "aiosqlite",
    ),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in imports_of(path)
        if name.startswith(FORBIDDEN[package])
    ]
    assert not offenders
