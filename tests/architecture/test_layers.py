"""The packages import downward only: core ← email ← accounts, media ← auth, push ← messaging ←
admin, notifications ← realtime, web, ops. Email sits just above core so that every domain may
queue an email; push (devices and sending) sits below messaging, which decides who is pushed
about a message.

A package may import its own modules and those of lower layers, never a higher one (not even for
type checking), so that each layer can be read, tested and changed without the ones above it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from sqlalchemy import Table

import pigeon
from pigeon.core.db import AppBase, MessagingBase

ROOT = Path(pigeon.__file__).parent
LAYERS = {
    "core": 0,
    "email": 1,
    "accounts": 2,
    "media": 2,
    "auth": 3,
    "push": 3,
    "messaging": 4,
    "admin": 5,
    "notifications": 5,
    "realtime": 6,
    "web": 6,
    "ops": 6,
}
# modules outside the layers: settings underlies everything, the rest put the app together
BASE = {"pigeon", "pigeon.__version__"}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "pigeon" or name.startswith("pigeon.")}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_package_imports_only_its_own_layer_and_below(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports(path):
            other = package_of(name)
            if name in BASE or name.startswith("pigeon.settings"):
                continue
            if other is None:
                wrong.append(f"{path.relative_to(ROOT)} imports {name} (outside the layers)")
            elif other != package and LAYERS[other] >= LAYERS[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def is_table(value: object) -> bool:
    return isinstance(value, Table) or (
        isinstance(value, type) and issubclass(value, AppBase | MessagingBase)
    )


def foreign_models(tree: ast.Module, package: str) -> set[str]:
    """Names bound to another layered package's tables (model classes or Table objects),
    however they were imported."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            other = package_of(node.module)
            if other is None or other == package:
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if is_table(getattr(module, alias.name, None)):
                    names.add(alias.asname or alias.name)
    return names


def test_no_package_reads_another_packages_tables() -> None:
    """Another package's models may name a type (what its services return), but only its own
    services query them: no column access, no model passed to a query or a session."""
    wrong = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            models = foreign_models(tree, package)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    used = node.value.id if node.value.id in models else None
                elif isinstance(node, ast.Call):
                    args = [*node.args, *(k.value for k in node.keywords)]
                    names = [a.id for a in args if isinstance(a, ast.Name) and a.id in models]
                    used = names[0] if names else None
                else:
                    used = None
                if used:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} queries {used}")
    assert not wrong, "\n".join(wrong)
