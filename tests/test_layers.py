"""The code's shape, checked: imports at module level, so the import graph a reader sees (and that
import-linter checks, see pyproject.toml) is the real one.

An import inside a function is allowed only where start-up time demands it (the `deact` CLI's
`--help`, a Dataflow worker, a Prefect deployment's registration), and then it says why on its own
line: `# lazy: <reason>` (on the import or the line before).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "deactivation",
    "ingest_app",
    "beam",
    "reports",
    "flows",
    "dashboard_app",
    "notifications",
    "privacy",
    "deact",
)


def _function_imports_without_reason() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        here = lines[inner.lineno - 1]
                        before = lines[inner.lineno - 2] if inner.lineno > 1 else ""
                        if "# lazy:" not in here and "# lazy:" not in before:
                            found.append(f"{path.relative_to(REPO)}:{inner.lineno}: {here.strip()}")
    return sorted(set(found))


def test_imports_inside_functions_say_why():
    unexplained = _function_imports_without_reason()
    assert not unexplained, "imports inside functions without a `# lazy: <reason>`:\n" + "\n".join(
        unexplained
    )
