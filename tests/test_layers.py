"""Data moves one way (DESIGN.md, "Rules of the house"): every module under profd/ is parsed
and its imports of profd (at the top, inside functions, under TYPE_CHECKING) are checked
against the layers' rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import profd

PACKAGE = Path(profd.__file__).parent

# Importer prefix -> (the only prefixes it may import | None, prefixes it must never import).
# A prefix is a dotted module name; it covers the module and everything below it.
ONLY = "only"
NEVER = "never"
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    # What a profile is: pure data, nothing of the rest of profd but the root of the error tree.
    ("profd.formats", ONLY, ("profd.formats", "profd.errors")),
    # Pure computation over profiles.
    ("profd.analysis", ONLY, ("profd.analysis", "profd.formats", "profd.errors")),
    # I/O only: the store takes finished rows, it never computes them.
    ("profd.store", NEVER, ("profd.analysis", "profd.pipeline")),
    ("profd.symbols", NEVER, ("profd.pipeline",)),
    ("profd.bus", NEVER, ("profd.pipeline",)),
    # Relay's role: envelopes in, messages out; the bus, the pipeline and the store are not its.
    ("profd.ingest", NEVER, ("profd.pipeline", "profd.bus", "profd.store")),
]
# The outermost layers: only they themselves import them (profd/__main__.py is the CLI's entry).
OUTERMOST = {
    "profd.web": ("profd.web", "profd.cli", "profd.__main__"),
    "profd.cli": ("profd.cli", "profd.__main__"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def profd_imports(source: str, package: str) -> set[tuple[str, int]]:
    """Every profd module a module of `package` imports, with the line: ``from profd.x import
    y`` counts as profd.x.y (y may be a module), ``from profd import x`` as profd.x; relative
    imports are resolved against the package."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found |= {(f"{base}.{alias.name}", node.lineno) for alias in node.names}
    return {(imported, line) for imported, line in found if within(imported, "profd")}


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for imported, line in sorted(profd_imports(path.read_text(), package)):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} imports {imported}"
            for layer, kind, prefixes in RULES:
                if not within(importer, layer):
                    continue
                allowed = any(within(imported, p) for p in prefixes)
                if kind == ONLY and not allowed:
                    found.append(f"{where} ({layer} imports only {', '.join(prefixes)})")
                if kind == NEVER and allowed:
                    found.append(f"{where} ({layer} never imports {', '.join(prefixes)})")
            for outer, importers in OUTERMOST.items():
                if within(imported, outer) and not any(within(importer, p) for p in importers):
                    found.append(f"{where} (only {', '.join(importers)} import {outer})")
    return found


def test_data_moves_one_way() -> None:
    found = violations()
    assert not found, "imports against the flow:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import profd.store.records", "profd.store.records"),
        ("from profd.analysis.flame import fold", "profd.analysis.flame.fold"),
        ("from profd import metrics", "profd.metrics"),
        ("def f():\n    from profd.pipeline import task", "profd.pipeline.task"),
        ("from . import sample", "profd.formats.sample"),
        ("from ..errors import InputError", "profd.errors.InputError"),
    ],
)
def test_every_kind_of_import_is_seen(source: str, expected: str) -> None:
    # The checker itself, on a module of profd.formats.
    assert [imported for imported, _ in profd_imports(source + "\n", "profd.formats")] == [expected]
