"""Promoting a notebook's chart prototype into the chart registry, or into review first.

The notebook tags three cells: `chart-meta` (a dict literal with title and description),
`chart-sql` (a string literal: one BigQuery-dialect SELECT taking @project_hash, @start_day,
@end_day) and `chart-figure` (its imports and `def figure(df)`). Promotion writes
reports/charts/<id>.py, reports/sql/chart_<id>.sql and a test skeleton tests/reports/test_chart_<id>.py;
the analytics flow, the report and the dashboard pick the chart up from the registry with no other
change. A preview writes the same module and SQL into reports/review/ instead: the dashboard draws
charts in review next to the registered ones, marked, until promotion takes them out of review.
Everything is validated before anything is written, and an existing chart is only replaced with
`force`. `deact chart` (deact/commands/chart.py) is the command line over this module.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import os
import re
import symtable
import textwrap
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from deactivation.schemas import ALL_TABLES
from reports.registry import DEFAULT_CHARTS_DIR, DEFAULT_SQL_DIR, Chart, load_charts

TAGS = ("chart-meta", "chart-sql", "chart-figure")
CHART_PARAMS = frozenset({"project_hash", "start_day", "end_day"})
_CHART_ID = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
#: Where promoted charts' generated tests go: the tests mirror reports/ (tests/reports/).
DEFAULT_TESTS_DIR = DEFAULT_CHARTS_DIR.parents[1] / "tests" / "reports"
#: Charts in review: module and SQL side by side, loaded by the dashboard, never by the report.
DEFAULT_REVIEW_DIR = DEFAULT_CHARTS_DIR.parent / "review"


class PromotionError(ValueError):
    """The notebook, its cells or the chart id cannot be promoted; nothing was written."""


@dataclass(frozen=True)
class Prototype:
    """What a notebook's tagged cells say about a chart."""

    title: str
    description: str
    sql: str
    figure_source: str
    meta_id: str | None


@dataclass(frozen=True)
class PromotedFiles:
    module: Path
    sql: Path
    test: Path


def validate_chart_id(chart_id: str) -> str:
    if not _CHART_ID.match(chart_id) or keyword.iskeyword(chart_id):
        raise PromotionError(
            f"chart id {chart_id!r} must be 3-63 characters: a lowercase letter, then lowercase letters, "
            "digits or _ (it names a Python module and an SQL file)"
        )
    return chart_id


# --- reading the notebook ---------------------------------------------------------------------------


def read_prototype(notebook_path: Path) -> Prototype:
    cells = _tagged_cells(notebook_path)
    meta = _literal(cells["chart-meta"], dict, "chart-meta")
    for key in ("title", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise PromotionError(f"the chart-meta cell needs a non-empty {key!r} string")
    sql = _literal(cells["chart-sql"], str, "chart-sql").strip()
    validate_sql(sql)
    figure_source = cells["chart-figure"].strip() + "\n"
    validate_figure(figure_source)
    meta_id = meta.get("id")
    return Prototype(
        title=meta["title"].strip(),
        description=" ".join(meta["description"].split()),
        sql=sql,
        figure_source=figure_source,
        meta_id=meta_id if isinstance(meta_id, str) else None,
    )


def _tagged_cells(notebook_path: Path) -> dict[str, str]:
    # Plain JSON rather than nbformat: importing nbformat's schema validation takes seconds.
    if not notebook_path.is_file():
        raise PromotionError(f"no notebook at {notebook_path}")
    try:
        document = json.loads(notebook_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromotionError(f"{notebook_path} is not a readable notebook: {exc}") from exc
    if not isinstance(document, dict) or document.get("nbformat") != 4:
        raise PromotionError(f"{notebook_path} is not a Jupyter notebook in format 4")
    found: dict[str, list[str]] = {tag: [] for tag in TAGS}
    for cell in document.get("cells", []):
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag in found and cell.get("cell_type") == "code":
                source = cell.get("source", "")
                found[tag].append("".join(source) if isinstance(source, list) else source)
    for tag, sources in found.items():
        if len(sources) != 1:
            raise PromotionError(
                f"{notebook_path} must have exactly one code cell tagged {tag!r}, found {len(sources)}"
            )
    return {tag: sources[0] for tag, sources in found.items()}


def _literal(source: str, expected: type, tag: str):
    """The value of the cell's single `NAME = <literal>` assignment."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise PromotionError(f"the {tag} cell is not valid Python: {exc.msg} (line {exc.lineno})") from exc
    assignments = [node for node in tree.body if isinstance(node, ast.Assign)]
    if len(assignments) != 1:
        raise PromotionError(f"the {tag} cell must assign exactly one {expected.__name__} literal")
    try:
        value = ast.literal_eval(assignments[0].value)
    except ValueError as exc:
        raise PromotionError(
            f"the {tag} cell must assign a literal {expected.__name__}, not an expression"
        ) from exc
    if not isinstance(value, expected):
        raise PromotionError(f"the {tag} cell must assign a {expected.__name__}, got {type(value).__name__}")
    return value


def validate_sql(sql: str) -> None:
    """One BigQuery SELECT that uses only the parameters the analytics build passes."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise PromotionError(f"the chart-sql cell does not parse as BigQuery SQL: {exc}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise PromotionError("the chart-sql cell must hold exactly one SELECT statement")
    unknown = {p.name for p in statements[0].find_all(exp.Parameter)} - CHART_PARAMS
    if unknown:
        raise PromotionError(
            f"the chart SQL uses parameters {sorted(unknown)}; charts get only "
            "@project_hash, @start_day and @end_day"
        )


def validate_figure(source: str) -> None:
    """`def figure(df)` that compiles and needs nothing from the rest of the notebook."""
    try:
        tree = ast.parse(source)
        compile(tree, "<chart-figure cell>", "exec")
    except SyntaxError as exc:
        raise PromotionError(
            f"the chart-figure cell does not compile: {exc.msg} (line {exc.lineno})"
        ) from exc
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "figure"]
    if len(functions) != 1 or len(functions[0].args.args) != 1:
        raise PromotionError("the chart-figure cell must define `def figure(df)` taking one DataFrame")
    missing = sorted(_undefined_names(source))
    if missing:
        raise PromotionError(
            f"the chart-figure cell uses {', '.join(missing)} without defining or importing it; "
            "the chart module holds only that cell, so import or define everything it needs there"
        )


def _undefined_names(source: str) -> set[str]:
    module = symtable.symtable(source, "<chart-figure cell>", "exec")
    defined = {
        symbol.get_name() for symbol in module.get_symbols() if symbol.is_assigned() or symbol.is_imported()
    }
    available = defined | set(dir(builtins))
    return {name for name in _global_references(module) if name not in available}


def _global_references(table: symtable.SymbolTable) -> set[str]:
    names = {
        symbol.get_name()
        for symbol in table.get_symbols()
        if symbol.is_referenced() and (symbol.is_global() or table.get_type() == "module")
    }
    for child in table.get_children():
        names |= _global_references(child)
    return names


# --- writing the registry files ----------------------------------------------------------------------


def chart_module_source(chart_id: str, prototype: Prototype, notebook_path: Path) -> str:
    imports, body = _split_imports(prototype.figure_source)
    docstring = "\n".join(
        [
            f'"""{prototype.title}.',
            "",
            *textwrap.wrap(prototype.description, 100),
            "",
            f"Promoted from {notebook_path.name} by `deact chart promote`; edit it here from now on.",
            '"""',
        ]
    )
    parts = [docstring, "from __future__ import annotations"]
    registry_import = "from reports.registry import Chart"
    if imports and _last_import_is_first_party(imports):
        parts.append(imports + "\n" + registry_import)  # the same isort block as the cell's own
    else:
        parts += [imports, registry_import] if imports else [registry_import]
    chart = "\n".join(
        [
            "CHART = Chart(",
            f"    id={_string(chart_id, 4)},",
            f"    title={_string(prototype.title, 4)},",
            f"    description={_string(prototype.description, 4)},",
            f"    sql={_string(sql_file_name(chart_id), 4)},",
            "    figure=figure,",
            ")",
        ]
    )
    header = "\n\n".join(parts)
    after_imports = "\n\n\n" if body.startswith(("def ", "@", "class ")) else "\n\n"
    return header + after_imports + body.rstrip() + "\n\n\n" + chart + "\n"


def sql_file_name(chart_id: str) -> str:
    """Chart SQL files are named like the registry's own (chart_<id>.sql), apart from aggregates' SQL."""
    return f"chart_{chart_id}.sql"


def sql_file_source(chart_id: str, prototype: Prototype) -> str:
    header = (
        f"-- Chart {chart_id}: {prototype.title}.\n"
        "-- Params: @project_hash STRING, @start_day DATE, @end_day DATE. Promoted from a notebook.\n"
    )
    return header + prototype.sql + "\n"


def _last_import_is_first_party(imports: str) -> bool:
    last = ast.parse(imports).body[-1]
    module = last.module if isinstance(last, ast.ImportFrom) else last.names[0].name
    return (module or "").split(".")[0] in {"deactivation", "reports"}


def _split_imports(source: str) -> tuple[str, str]:
    """(the cell's leading import block, the rest), keeping comments and layout of the rest."""
    tree = ast.parse(source)
    lines = source.splitlines()
    leading = 0
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            break
        leading = node.end_lineno or leading
    imports = "\n".join(lines[:leading]).strip()
    return imports, "\n".join(lines[leading:]).strip()


def _string(value: str, indent: int) -> str:
    """A double-quoted Python literal, split over lines when it would be too long."""
    literal = json.dumps(value, ensure_ascii=False)
    if len(literal) + indent + 20 <= 110:
        return literal
    chunks = textwrap.wrap(value, 90, drop_whitespace=False)
    pad = " " * (indent + 4)
    return (
        "(\n" + "\n".join(pad + json.dumps(c, ensure_ascii=False) for c in chunks) + "\n" + " " * indent + ")"
    )


def test_skeleton_source(chart_id: str, prototype: Prototype, targets: PromotedFiles, tests_dir: Path) -> str:
    charts_dir = os.path.relpath(targets.module.parent.resolve(), tests_dir.resolve())
    sql_dir = os.path.relpath(targets.sql.parent.resolve(), tests_dir.resolve())
    fixture = "\n".join(
        f"        {json.dumps(column)}: {values},"
        for column, values in fixture_columns(prototype.sql).items()
    )
    return f'''"""The {chart_id} chart draws from a fixture frame shaped like its SQL's result.

Generated by `deact chart promote` as a skeleton: make the fixture rows realistic and assert what
the chart must show.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import sqlglot

from reports.registry import load_charts

CHART_ID = {json.dumps(chart_id)}
HERE = Path(__file__).resolve().parent
CHARTS_DIR = (HERE / {json.dumps(charts_dir)}).resolve()
SQL_DIR = (HERE / {json.dumps(sql_dir)}).resolve()

FIXTURE = pd.DataFrame(
    {{
{fixture}
    }}
)


def _chart():
    return {{chart.id: chart for chart in load_charts(CHARTS_DIR, SQL_DIR)}}[CHART_ID]


def test_{chart_id}_sql_is_one_bigquery_select():
    statements = sqlglot.parse(_chart().sql_text(), read="bigquery")
    assert len(statements) == 1


def test_{chart_id}_draws_the_fixture_frame():
    figure = _chart().figure(FIXTURE.copy())
    assert isinstance(figure, go.Figure)
    assert len(figure.data) > 0
'''


def fixture_columns(sql: str) -> dict[str, str]:
    """column → Python source of sample values, typed from the SQL where sqlglot can tell."""
    types = _select_types(sql)
    return {column: _sample_values(column, sql_type) for column, sql_type in types.items()}


def _select_types(sql: str) -> dict[str, str]:
    schema = {table.name: {c.name: c.type for c in table.columns} for table in ALL_TABLES.values()}
    expression = sqlglot.parse_one(sql, read="bigquery")
    try:
        typed = annotate_types(qualify(expression.copy(), schema=schema, dialect="bigquery"), schema=schema)
        return {s.alias_or_name: (s.type.sql("bigquery") if s.type else "UNKNOWN") for s in typed.selects}
    except sqlglot.errors.SqlglotError:  # tables we have no schema for (aggregates): guess by name
        return dict.fromkeys(expression.named_selects, "UNKNOWN")


def _sample_values(column: str, sql_type: str) -> str:
    name = column.lower()
    if sql_type == "DATE" or name == "day" or name.endswith("_day"):
        return f"pd.to_datetime({_py_list(['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-04'])})"
    if sql_type == "TIMESTAMP" or name in {"hour", "received_at"} or name.endswith("_hour"):
        hours = [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00Z",
            "2026-01-01T02:00:00Z",
            "2026-01-01T03:00:00Z",
        ]
        return f"pd.to_datetime({_py_list(hours)})"
    if sql_type in {"FLOAT64", "NUMERIC", "BIGNUMERIC"} or any(w in name for w in ("share", "ratio", "avg")):
        return _py_list([0.4, 0.3, 0.2, 0.1])
    if sql_type == "INT64" or any(w in name for w in ("deactivations", "count", "total", "events")):
        return _py_list([40, 30, 20, 10])
    if sql_type == "BOOL":
        return _py_list([True, False, True, False])
    for fragment, values in _SAMPLE_STRINGS.items():
        if fragment in name:
            return _py_list(values)
    return _py_list([f"{column} {i}" for i in range(1, 5)])


_SAMPLE_STRINGS = {
    "reason_label": ["Not working", "Found a better plugin", "Other", "No reason given"],
    "reason": ["is-not-working", "found-better-plugin", "other", "none"],
    "major": ["5", "6", "6", "5"],
    "version": ["6.4", "6.5", "6.6", "6.7"],
    "locale": ["en_US", "de_DE", "fr_FR", "es_ES"],
}


def _py_list(values: list) -> str:
    """A Python list literal formatted the way ruff would (double quotes, True/False)."""
    return "[" + ", ".join(repr(v) if isinstance(v, bool) else json.dumps(v) for v in values) + "]"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


# --- promotion and review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionResult:
    chart_id: str
    written: list[Path]
    kept: list[Path]
    replaced: bool
    removed_from_review: list[Path]
    meta_id: str | None

    def summary(self) -> dict:
        return {
            "chart": self.chart_id,
            "written": [str(path) for path in self.written],
            "kept": [str(path) for path in self.kept],
            "replaced": self.replaced,
            "removed_from_review": [str(path) for path in self.removed_from_review],
        }


def promote(
    notebook: Path,
    chart_id: str,
    *,
    force: bool = False,
    charts_dir: Path = DEFAULT_CHARTS_DIR,
    sql_dir: Path = DEFAULT_SQL_DIR,
    tests_dir: Path = DEFAULT_TESTS_DIR,
    review_dir: Path = DEFAULT_REVIEW_DIR,
) -> PromotionResult:
    """Write the notebook's chart into the registry and take it out of review."""
    chart_id = validate_chart_id(chart_id)
    prototype = read_prototype(notebook)
    targets = PromotedFiles(
        module=charts_dir / f"{chart_id}.py",
        sql=sql_dir / sql_file_name(chart_id),
        test=tests_dir / f"test_chart_{chart_id}.py",
    )
    existing = [path for path in (targets.module, targets.sql) if path.exists()]
    if existing and not force:
        raise PromotionError(
            f"chart {chart_id!r} already exists ({', '.join(map(str, existing))}); nothing was changed. "
            "Pass --force to replace it, or choose another --id"
        )
    contents = _file_contents(chart_id, prototype, targets, notebook, tests_dir)
    for path, text in contents.items():
        _write(path, text)
    removed = _remove_review_files(chart_id, review_dir)
    return PromotionResult(
        chart_id=chart_id,
        written=list(contents),
        kept=[] if targets.test in contents else [targets.test],
        replaced=bool(existing),
        removed_from_review=removed,
        meta_id=prototype.meta_id,
    )


def _file_contents(
    chart_id: str, prototype: Prototype, targets: PromotedFiles, notebook: Path, tests_dir: Path
) -> dict[Path, str]:
    """What to write where. An existing test is left alone: once written, the skeleton is the
    developer's test, and --force replaces the chart, not the checks someone wrote for it."""
    module = chart_module_source(chart_id, prototype, notebook)
    compile(module, str(targets.module), "exec")
    contents = {targets.module: module, targets.sql: sql_file_source(chart_id, prototype)}
    if not targets.test.exists():
        contents[targets.test] = test_skeleton_source(chart_id, prototype, targets, tests_dir)
    return contents


def preview(
    notebook: Path,
    chart_id: str | None = None,
    *,
    review_dir: Path = DEFAULT_REVIEW_DIR,
    charts_dir: Path = DEFAULT_CHARTS_DIR,
) -> list[Path]:
    """Put the notebook's chart in review (replacing an earlier preview of the same id)."""
    prototype = read_prototype(notebook)
    if not (chart_id or prototype.meta_id):
        raise PromotionError("the chart needs an id: pass --id, or give chart-meta an 'id'")
    chart_id = validate_chart_id(chart_id or prototype.meta_id or "")
    if (charts_dir / f"{chart_id}.py").exists():
        raise PromotionError(f"chart {chart_id!r} is already registered; preview it under another id (--id)")
    module = chart_module_source(chart_id, prototype, notebook).replace(
        "by `deact chart promote`; edit it here from now on.",
        "by `deact chart preview`: in review, not promoted (`deact chart promote` takes it out).",
    )
    compile(module, f"{chart_id}.py", "exec")
    files = {
        review_dir / f"{chart_id}.py": module,
        review_dir / sql_file_name(chart_id): sql_file_source(chart_id, prototype),
    }
    for path, text in files.items():
        _write(path, text)
    return list(files)


def load_review_charts(review_dir: Path = DEFAULT_REVIEW_DIR) -> list[Chart]:
    """The charts in review (none when the folder does not exist)."""
    if not review_dir.is_dir():
        return []
    return load_charts(review_dir, review_dir)


def _remove_review_files(chart_id: str, review_dir: Path) -> list[Path]:
    removed = []
    for path in (review_dir / f"{chart_id}.py", review_dir / sql_file_name(chart_id)):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
