"""`deact chart promote` and `preview` (reports/promotion.py): bad input is refused with a clear
message and nothing is written; a preview is in review until promotion takes it out."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from deact.cli import main as deact

META = 'CHART_META = {"id": "x", "title": "Daily volume", "description": "Deactivations per day."}'
SQL = '''CHART_SQL = """
SELECT DATE(raw_hour) AS day, COUNT(*) AS deactivations
FROM deactivations
WHERE project_hash = @project_hash AND DATE(raw_hour) BETWEEN @start_day AND @end_day
GROUP BY day
"""'''
FIGURE = """import pandas as pd
import plotly.express as px


def figure(df: pd.DataFrame):
    return px.bar(df, x="day", y="deactivations")
"""


def write_notebook(path: Path, meta: str = META, sql: str = SQL, figure: str = FIGURE) -> Path:
    notebook = nbformat.v4.new_notebook()
    for source, tag in ((meta, "chart-meta"), (sql, "chart-sql"), (figure, "chart-figure")):
        if source is not None:
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["tags"] = [tag]
            notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def promote(tmp_path: Path, notebook: Path, chart_id: str = "daily_volume") -> int:
    return deact(
        [
            "chart", "promote", str(notebook), "--id", chart_id,
            "--charts-dir", str(tmp_path / "charts"), "--sql-dir", str(tmp_path / "sql"),
            "--tests-dir", str(tmp_path / "tests"), "--review-dir", str(tmp_path / "review"),
        ]
    )  # fmt: skip


def assert_refused(tmp_path: Path, capsys, notebook: Path, message: str, chart_id: str = "daily_volume"):
    assert promote(tmp_path, notebook, chart_id) == 2
    output = capsys.readouterr()
    assert message in output.err
    assert output.out == ""
    assert not any((tmp_path / d).exists() for d in ("charts", "sql", "tests")), "something was written"


def test_a_well_formed_notebook_promotes(tmp_path, capsys):
    assert promote(tmp_path, write_notebook(tmp_path / "ok.ipynb")) == 0
    module = (tmp_path / "charts" / "daily_volume.py").read_text()
    assert 'id="daily_volume"' in module
    assert 'sql="chart_daily_volume.sql"' in module
    assert "@project_hash" in (tmp_path / "sql" / "chart_daily_volume.sql").read_text()
    assert '"day": pd.to_datetime(' in (tmp_path / "tests" / "test_chart_daily_volume.py").read_text()
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith('{"chart": "daily_volume"')


@pytest.mark.parametrize("chart_id", ["Daily", "1st_chart", "daily-volume", "ab", "class", "../evil"])
def test_an_invalid_chart_id_is_refused(tmp_path, capsys, chart_id):
    assert_refused(tmp_path, capsys, write_notebook(tmp_path / "ok.ipynb"), "chart id", chart_id)


def test_sql_that_does_not_parse_as_bigquery_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "bad.ipynb", sql='CHART_SQL = "SELECT FROM WHERE ("')
    assert_refused(tmp_path, capsys, notebook, "does not parse as BigQuery SQL")


def test_more_than_one_statement_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "two.ipynb", sql='CHART_SQL = "SELECT 1; SELECT 2"')
    assert_refused(tmp_path, capsys, notebook, "exactly one SELECT")


def test_parameters_the_build_does_not_pass_are_refused(tmp_path, capsys):
    sql = 'CHART_SQL = "SELECT * FROM deactivations WHERE project_hash = @project AND locale = @locale"'
    notebook = write_notebook(tmp_path / "params.ipynb", sql=sql)
    assert_refused(tmp_path, capsys, notebook, "uses parameters ['locale', 'project']")


def test_a_figure_cell_that_does_not_compile_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "syntax.ipynb", figure="def figure(df):\n    return (\n")
    assert_refused(tmp_path, capsys, notebook, "the chart-figure cell does not compile")


def test_a_figure_that_needs_other_notebook_cells_is_refused(tmp_path, capsys):
    figure = "def figure(df):\n    return px.bar(df, x=X_COLUMN, y='deactivations')\n"
    notebook = write_notebook(tmp_path / "names.ipynb", figure=figure)
    assert_refused(tmp_path, capsys, notebook, "uses X_COLUMN, px without defining or importing it")


def test_a_cell_without_figure_function_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "nofig.ipynb", figure="def draw(df):\n    return df\n")
    assert_refused(tmp_path, capsys, notebook, "must define `def figure(df)`")


def test_a_missing_tag_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "untagged.ipynb", meta=None)
    assert_refused(tmp_path, capsys, notebook, "exactly one code cell tagged 'chart-meta', found 0")


def test_meta_without_a_title_is_refused(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "meta.ipynb", meta='CHART_META = {"description": "d"}')
    assert_refused(tmp_path, capsys, notebook, "needs a non-empty 'title'")


def test_a_missing_notebook_is_refused(tmp_path, capsys):
    assert_refused(tmp_path, capsys, tmp_path / "nowhere.ipynb", "no notebook at")


def test_a_file_that_is_not_a_notebook_is_refused(tmp_path, capsys):
    not_a_notebook = tmp_path / "notes.ipynb"
    not_a_notebook.write_text("# just markdown")
    assert_refused(tmp_path, capsys, not_a_notebook, "is not a readable notebook")


def preview(tmp_path: Path, notebook: Path, *extra: str) -> int:
    return deact(
        [
            "chart", "preview", str(notebook), "--review-dir", str(tmp_path / "review"),
            "--charts-dir", str(tmp_path / "charts"), *extra,
        ]
    )  # fmt: skip


def test_a_preview_is_a_loadable_chart_in_review_until_promoted(tmp_path, capsys):
    from reports.promotion import load_review_charts

    notebook = write_notebook(tmp_path / "ok.ipynb")
    assert preview(tmp_path, notebook, "--id", "daily_volume") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith('{"chart": "daily_volume", "in_review": true')
    [chart] = load_review_charts(tmp_path / "review")
    assert (chart.id, chart.title) == ("daily_volume", "Daily volume")
    assert "@project_hash" in chart.sql_text()
    assert not (tmp_path / "charts").exists(), "a preview must not register the chart"

    assert promote(tmp_path, notebook) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert '"removed_from_review": [' in summary and "daily_volume.py" in summary
    assert load_review_charts(tmp_path / "review") == []
    assert (tmp_path / "charts" / "daily_volume.py").exists()


def test_a_preview_needs_an_id_and_refuses_a_registered_one(tmp_path, capsys):
    no_id = write_notebook(
        tmp_path / "noid.ipynb", meta='CHART_META = {"title": "Daily volume", "description": "d"}'
    )
    assert preview(tmp_path, no_id) == 2
    assert "the chart needs an id" in capsys.readouterr().err
    assert promote(tmp_path, write_notebook(tmp_path / "ok.ipynb")) == 0
    capsys.readouterr()
    assert preview(tmp_path, tmp_path / "ok.ipynb", "--id", "daily_volume") == 2
    assert "already registered" in capsys.readouterr().err
    assert not (tmp_path / "review").exists()


def test_a_bad_notebook_is_never_put_in_review(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "bad.ipynb", sql='CHART_SQL = "SELECT 1; SELECT 2"')
    assert preview(tmp_path, notebook, "--id", "daily_volume") == 2
    assert "exactly one SELECT" in capsys.readouterr().err
    assert not (tmp_path / "review").exists()
