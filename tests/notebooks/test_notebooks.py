"""Both workbench notebooks run top to bottom on demo data, and 02's chart promotes into the registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from deact.cli import main as deact
from deactivation.generator import DEMO_PROJECTS

from .conftest import EXPLORE, PROTOTYPE, execute_notebook, printed

FORM_BUILDER = DEMO_PROJECTS[0]  # the plugin with custom reasons
PROMOTED_ID = "reason_share_by_wp_version"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", [EXPLORE, PROTOTYPE], ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for cell in code_cells:
        assert cell.outputs == [], f"{path.name}: a cell has stored outputs: {cell.source[:60]!r}"
        assert cell.execution_count is None
    tags = [tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])]
    assert tags.count("parameters") == 1


def test_prototype_notebook_tags_each_chart_cell_once():
    notebook = nbformat.read(PROTOTYPE, as_version=4)
    tags = [tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])]
    for tag in ("chart-meta", "chart-sql", "chart-figure"):
        assert tags.count(tag) == 1, tag


@pytest.mark.slow
def test_explore_notebook_runs_on_demo_data(demo_data):
    executed = execute_notebook(
        EXPLORE,
        demo_data,
        {"project": FORM_BUILDER.name, "days": 2, "end_day": "", "reason": "is-not-working"},
    )
    text = printed(executed)
    assert f"{FORM_BUILDER.name} (plugin, {FORM_BUILDER.hash}), 2026-11-20 … 2026-11-21" in text
    assert "most recent answers for reason 'is-not-working'" in text
    everything = nbformat.writes(executed)
    assert "jane.doe@example.com" not in everything  # free text is shown with personal data masked
    assert "Too expensive" in everything  # the project's custom reason made it into the tables


@pytest.mark.slow
def test_prototype_notebook_runs_on_demo_data(demo_data):
    executed = execute_notebook(
        PROTOTYPE, demo_data, {"project": FORM_BUILDER.hash, "days": 2, "end_day": ""}
    )
    assert "WordPress versions: consistent" in printed(executed)


@pytest.mark.slow
def test_promoted_prototype_is_built_and_rendered_by_the_analytics_flow(
    demo_data, tmp_path, monkeypatch, capsys
):
    import reports.registry
    from reports.analytics import build_analytics
    from reports.render import render_report

    charts_dir, sql_dir, tests_dir = _registry_copy(tmp_path)
    monkeypatch.setattr(reports.registry, "DEFAULT_CHARTS_DIR", charts_dir)
    monkeypatch.setattr(reports.registry, "DEFAULT_SQL_DIR", sql_dir)

    assert _promote(charts_dir, sql_dir, tests_dir) == 0
    assert f"wrote {charts_dir / (PROMOTED_ID + '.py')}" in capsys.readouterr().out

    build_analytics(demo_data, full=True)
    summary = render_report(demo_data, tmp_path / "report", png=False)
    key = f"{FORM_BUILDER.hash}/{PROMOTED_ID}"
    assert key in summary.charts
    assert key not in summary.empty
    page = next(p.html_path for p in summary.pages if p.hash == FORM_BUILDER.hash)
    assert "Reason share by WordPress version" in Path(page).read_text()


def test_promoting_twice_without_force_fails_and_changes_nothing(tmp_path, capsys):
    charts_dir, sql_dir, tests_dir = _registry_copy(tmp_path)
    assert _promote(charts_dir, sql_dir, tests_dir) == 0
    written = capsys.readouterr().out
    files = [charts_dir / f"{PROMOTED_ID}.py", sql_dir / f"chart_{PROMOTED_ID}.sql"]
    files.append(tests_dir / f"test_chart_{PROMOTED_ID}.py")
    for path in files:
        assert f"wrote {path}" in written
    before = _snapshot(tmp_path)

    assert _promote(charts_dir, sql_dir, tests_dir) == 2
    output = capsys.readouterr()
    assert f"chart '{PROMOTED_ID}' already exists" in output.err
    assert "--force" in output.err
    assert output.out == ""
    assert _snapshot(tmp_path) == before

    files[0].write_text(files[0].read_text() + "# edited by hand\n")
    files[2].write_text(files[2].read_text() + "# the developer's own test\n")
    assert _promote(charts_dir, sql_dir, tests_dir, "--force") == 0
    replaced = capsys.readouterr().out
    assert f"wrote {files[0]}" in replaced
    assert f"kept existing test {files[2]}" in replaced
    assert "# edited by hand" not in files[0].read_text()
    assert "# the developer's own test" in files[2].read_text()


def test_promoted_test_skeleton_passes(tmp_path, capsys):
    charts_dir, sql_dir, tests_dir = _registry_copy(tmp_path)
    assert _promote(charts_dir, sql_dir, tests_dir) == 0
    skeleton = _import(tests_dir / f"test_chart_{PROMOTED_ID}.py")
    tests = [getattr(skeleton, name) for name in dir(skeleton) if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


def _registry_copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A temp copy of the chart registry as it was before the prototype was promoted into it
    (the real registry holds the promoted chart since), and an empty tests dir beside it."""
    before_promotion = shutil.ignore_patterns(f"{PROMOTED_ID}.py", f"chart_{PROMOTED_ID}.sql")
    charts_dir = shutil.copytree(
        REPO / "reports" / "charts", tmp_path / "reports" / "charts", ignore=before_promotion
    )
    sql_dir = shutil.copytree(REPO / "reports" / "sql", tmp_path / "reports" / "sql", ignore=before_promotion)
    tests_dir = tmp_path / "tests" / "reports"
    return charts_dir, sql_dir, tests_dir


def _promote(charts_dir: Path, sql_dir: Path, tests_dir: Path, *extra: str) -> int:
    return deact(
        [
            "chart", "promote", str(PROTOTYPE), "--id", PROMOTED_ID,
            "--charts-dir", str(charts_dir), "--sql-dir", str(sql_dir), "--tests-dir", str(tests_dir),
            *extra,
        ]
    )  # fmt: skip


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _import(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
