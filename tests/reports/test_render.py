"""The report: an index page and one page per project, each checked against the generator's record.

The data: five days and ten hours of generated deactivations starting at 14:00 UTC (so the first day
is partial), with one whole day of the second plugin removed (so that day must show 0, not vanish).
Expected numbers are counted in plain Python from `Truth.events`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from pymongo.errors import ConnectionFailure

from deactivation.generator import DEMO_PROJECTS, generate_events
from deactivation.projects import Project, ProjectError, upsert_project
from deactivation.redaction import mask_free_text
from deactivation.warehouse import open_warehouse
from reports.analytics import build_analytics
from reports.registry import charts_for_kind, get_chart, load_charts
from reports.render import INDEX_FILE, PLOTLY_FILE, change_text, chart_frame, find_chromium, render_report
from reports.sections import MAX_ANSWER_CHARS, Headline, headline, written_answers

START = datetime(2026, 11, 15, 14, tzinfo=UTC)
HOURS = 24 * 5 + 10  # 2026-11-15 14:00 … 2026-11-20 23:59
PLUGIN, SEO, THEME = DEMO_PROJECTS
GAP_DAY = date(2026, 11, 18)  # SEO has no deactivations on this day
QUIET_PROJECT = Project(hash="22222222-3333-4444-8555-666666666666", name="Quiet Plugin")


@pytest.fixture
def events(settings, mongo_db, truth):
    generated = generate_events(seed=9, start_hour=START, hours=HOURS, events_per_hour=10)
    kept = [e for e in generated.truth.events if not (e.project_hash == SEO.hash and e.day == GAP_DAY)]
    hours = [START + timedelta(hours=i) for i in range(HOURS)]
    truth.load_events(settings, kept, hours, loaded_at=datetime(2026, 11, 21, tzinfo=UTC))
    for project in [*DEMO_PROJECTS, QUIET_PROJECT]:
        upsert_project(mongo_db, project)
    build_analytics(settings, publish=False)
    return kept


def _in(events, project, first: date, last: date):
    return [e for e in events if e.project_hash == project.hash and first <= e.day <= last]


def test_index_links_a_page_per_project_named_by_name(settings, events, tmp_path):
    summary = render_report(settings, tmp_path, days=3)

    index = (tmp_path / INDEX_FILE).read_text()
    assert summary.html_path == str(tmp_path / INDEX_FILE)
    names = sorted(p.name for p in [*DEMO_PROJECTS, QUIET_PROJECT])
    assert [page.name for page in summary.pages] == names
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)
    assert [name for _, name in links] == names
    for file_name, name in links:
        page = (tmp_path / file_name).read_text()
        assert f"<h1>{name}</h1>" in page and f"<title>{name}:" in page
        assert 'href="index.html"' in page
        # plotly.js once, next to the pages, loaded by a relative path: nothing from the network.
        assert re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", page) == [PLOTLY_FILE]
    assert {f for f, _ in links} == {"form-builder-pro.html", "nordic-blocks-theme.html"} | {
        "quiet-plugin.html",
        "simple-seo-meta.html",
    }
    assert (tmp_path / PLOTLY_FILE).stat().st_size > 1_000_000
    assert (summary.start_day, summary.end_day) == ("2026-11-18", "2026-11-20")
    assert summary.pngs == [] and summary.png_skipped.startswith("not requested")
    for page in [p for p in tmp_path.glob("*.html") if p.name != INDEX_FILE]:
        assert page.stat().st_size < 400_000, f"{page.name} should not inline plotly.js"


def test_themes_get_no_reason_charts(settings, events, tmp_path):
    summary = render_report(settings, tmp_path, days=3)

    theme_charts = [key.split("/")[1] for key in summary.charts if key.startswith(THEME.hash)]
    plugin_charts = [key.split("/")[1] for key in summary.charts if key.startswith(PLUGIN.hash)]
    assert theme_charts == [c.id for c in charts_for_kind("theme")]
    assert plugin_charts == [c.id for c in load_charts()]
    reason_charts = {
        "reasons_over_time",
        "reason_share",
        "reasons_by_version",
        "version_comparison",
        "top_terms",
    }
    assert reason_charts <= set(plugin_charts) and not reason_charts & set(theme_charts)
    page = (tmp_path / "nordic-blocks-theme.html").read_text()
    assert "Theme switched" not in page
    assert 'id="answers"' not in page and "headline-top-reason" not in page
    assert 'data-chart="deactivations_per_day"' in page


def test_headline_counts_the_period_against_the_previous_one(settings, events, tmp_path):
    summary = render_report(settings, tmp_path, days=2)

    current = _in(events, PLUGIN, date(2026, 11, 19), date(2026, 11, 20))
    previous = _in(events, PLUGIN, date(2026, 11, 17), date(2026, 11, 18))
    page_summary = next(p for p in summary.pages if p.hash == PLUGIN.hash)
    assert (page_summary.deactivations, page_summary.previous_deactivations) == (len(current), len(previous))
    assert page_summary.change == len(current) - len(previous)

    head = headline(open_warehouse(settings), PLUGIN.hash, date(2026, 11, 19), date(2026, 11, 20))
    assert head.previous_coverage == "full"
    by_reason = Counter(e.reason_label for e in current)
    assert {r.reason_label: r.deactivations for r in head.reasons if r.deactivations} == dict(by_reason)
    assert head.top_reason.deactivations == max(by_reason.values())

    page = (tmp_path / "form-builder-pro.html").read_text()
    change = len(current) - len(previous)
    ratio = f"{abs(change) / len(previous):.0%}"
    sign = "+" if change > 0 else "−"
    assert f'<div class="value">{len(current):,}</div>' in page
    assert f"{sign}{abs(change):,} ({sign}{ratio}) against {len(previous):,} in Nov 17 – Nov 18" in page


def test_headline_says_when_there_is_nothing_to_compare_with(settings, events, tmp_path):
    everything = headline(open_warehouse(settings), PLUGIN.hash, date(2026, 11, 15), date(2026, 11, 20))
    assert everything.deactivations == len(_in(events, PLUGIN, date(2026, 11, 15), date(2026, 11, 20)))
    assert everything.previous_coverage == "none" and everything.change is None

    # The previous 4 days (Nov 13-16) hold data only from Nov 15 on.
    partly = headline(open_warehouse(settings), PLUGIN.hash, date(2026, 11, 17), date(2026, 11, 20))
    assert partly.previous_coverage == "partial"
    assert partly.previous_deactivations == len(_in(events, PLUGIN, date(2026, 11, 13), date(2026, 11, 16)))

    render_report(settings, tmp_path, project=PLUGIN.name)
    page = (tmp_path / "form-builder-pro.html").read_text()
    assert "no data in the previous 6 days (Nov 9 – Nov 14) (Nov 15 holds data from 14:00 UTC only)" in page
    assert everything.partial_days == {date(2026, 11, 15): "data from 14:00 UTC only"}
    assert partly.partial_days == {}


def test_written_answers_newest_first_masked_and_filterable(settings, events, tmp_path):
    render_report(settings, tmp_path, days=3)

    expected = sorted(
        (e for e in _in(events, PLUGIN, date(2026, 11, 18), date(2026, 11, 20)) if e.reason_info.strip()),
        key=lambda e: e.received_at,
        reverse=True,
    )
    answers = written_answers(open_warehouse(settings), PLUGIN.hash, date(2026, 11, 18), date(2026, 11, 20))
    assert answers.total == len(expected) and len(answers.shown) == min(len(expected), 500)
    assert [a.text for a in answers.shown] == [mask_free_text(e.reason_info) for e in expected][:500]
    assert [a.received_at for a in answers.shown] == [e.received_at for e in expected][:500]
    personal = [e.reason_info for e in expected if "@" in e.reason_info or "://" in e.reason_info]
    assert personal, "the generator's answers should include personal data to mask"

    page = (tmp_path / "form-builder-pro.html").read_text()
    assert "jane.doe@example.com" not in page and "https://shop.example.com" not in page
    assert "[email]" in page and "[url]" in page
    rows = re.findall(r'<tr data-reason="([^"]+)">', page)
    assert rows == [e.reason_id for e in expected][:500]
    # The filter: one option per reason among the answers, with its count; hidden until the script runs.
    options = dict(re.findall(r'<option value="([^"]+)">[^<]*\((\d+)\)</option>', page))
    assert {k: int(v) for k, v in options.items()} == dict(Counter(rows))
    assert '<p id="reason-filter-box" hidden>' in page


def test_days_without_data_are_zero(settings, events):
    warehouse = open_warehouse(settings)
    first, last = date(2026, 11, 15), date(2026, 11, 20)
    per_day = Counter(e.day for e in events if e.project_hash == SEO.hash)
    frame = chart_frame(warehouse, get_chart("deactivations_per_day"), SEO.hash, first, last)
    days = [first + timedelta(days=i) for i in range(6)]
    assert [d.date() for d in frame["day"]] == days
    assert list(frame["deactivations"]) == [per_day[d] for d in days]
    assert per_day[GAP_DAY] == 0 and frame.set_index("day").loc[str(GAP_DAY), "deactivations"] == 0

    stacked = chart_frame(warehouse, get_chart("reasons_over_time"), SEO.hash, first, last)
    reasons = {e.reason_id for e in events if e.project_hash == SEO.hash}
    assert len(stacked) == len(days) * len(reasons)
    counts = Counter((e.day, e.reason_id) for e in events if e.project_hash == SEO.hash)
    for row in stacked.itertuples():
        assert row.deactivations == counts[row.day.date(), row.reason_id]


def test_a_project_is_chosen_by_name_or_hash(settings, events, tmp_path):
    by_name = render_report(settings, tmp_path / "name", project="simple seo meta", days=1)
    by_hash = render_report(settings, tmp_path / "hash", project=SEO.hash.upper(), days=1)
    assert by_name.projects == by_hash.projects == [SEO.hash]
    assert by_name.charts == by_hash.charts
    index = (tmp_path / "name" / INDEX_FILE).read_text()
    assert '<a href="simple-seo-meta.html">Simple SEO Meta</a>' in index
    # The others are listed with their numbers but no link (their pages were not written).
    assert "Form Builder Pro <span" in index and not (tmp_path / "name" / "form-builder-pro.html").exists()

    with pytest.raises(ProjectError, match="no project 'Nope'; known: Form Builder Pro"):
        render_report(settings, tmp_path / "none", project="Nope")
    assert not (tmp_path / "none").exists()


def test_a_project_without_data_gets_the_empty_state(settings, events, tmp_path):
    summary = render_report(settings, tmp_path, project=QUIET_PROJECT.hash, days=2)
    assert summary.empty == summary.charts and len(summary.charts) == len(load_charts())
    assert (summary.start_day, summary.end_day) == ("2026-11-19", "2026-11-20")
    page = (tmp_path / "quiet-plugin.html").read_text()
    assert "No deactivations for this project" in page and "No written answers in this period." in page


def test_mongodb_down_writes_nothing_and_keeps_the_last_report(settings, events, tmp_path):
    render_report(settings, tmp_path, days=3)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    down = settings.model_copy(update={"MONGODB_URI": "mongodb://127.0.0.1:9/?directConnection=true"})
    with pytest.raises(ConnectionFailure):
        render_report(down, tmp_path, days=3)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_one_project_report_covers_that_projects_own_days(settings, events, tmp_path, truth):
    later = generate_events(
        seed=10, start_hour=datetime(2026, 11, 25, tzinfo=UTC), hours=2, events_per_hour=10
    )
    others = [e for e in later.truth.events if e.project_hash != THEME.hash]
    truth.load_events(
        settings, others, {e.hour for e in others}, loaded_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    build_analytics(settings, publish=False)

    assert render_report(settings, tmp_path, project=THEME.hash).end_day == "2026-11-20"
    assert render_report(settings, tmp_path).end_day == "2026-11-25"


@pytest.fixture
def cli(settings, monkeypatch):
    for name, value in settings.store_environment().items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deact", *args], capture_output=True, text=True)

    return run


def test_cli_prints_a_short_summary_or_json(cli, events, tmp_path):
    human = cli("report", "render", "--out", str(tmp_path), "--days", "1")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.strip().splitlines()
    assert lines[0] == "Report for 2026-11-20 to 2026-11-20 (1 day):"
    assert lines[-1] == f"Open {tmp_path / INDEX_FILE}"
    assert len(lines) == 2 + len(DEMO_PROJECTS) + 1 and "Form Builder Pro" in human.stdout
    assert human.stderr == "", "no INFO lines while rendering"

    scripted = cli(
        "report", "render", "--out", str(tmp_path), "--days", "1", "--project", "Form Builder Pro", "--json"
    )
    assert scripted.returncode == 0, scripted.stderr
    summary = json.loads(scripted.stdout.strip().splitlines()[-1])
    assert summary["start_day"] == summary["end_day"] == "2026-11-20"
    assert summary["projects"] == [PLUGIN.hash] and summary["pngs"] == []

    bad = cli("report", "render", "--days", "0")
    assert bad.returncode == 2 and "--days must be at least 1" in bad.stderr


def test_cli_fails_in_one_line_when_mongodb_is_down(cli, events, tmp_path, monkeypatch):
    cli("report", "render", "--out", str(tmp_path), "--json")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?directConnection=true")

    result = cli("report", "render", "--out", str(tmp_path))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "MongoDB at mongodb://127.0.0.1:9/" in result.stderr and "does not answer" in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    unknown = cli("report", "render", "--out", str(tmp_path), "--project", "Nope")
    assert unknown.returncode == 3  # MongoDB is still down: that is said first


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (Debian package chromium)")
def test_png_per_chart_only_when_asked(settings, events, tmp_path):
    summary = render_report(settings, tmp_path, project=THEME.name, days=3, png=True)
    assert len(summary.pngs) == len(charts_for_kind("theme"))
    for path in summary.pngs:
        assert "nordic-blocks-theme" in path
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_hostile_answers_and_versions_are_shown_as_text(settings, mongo_db, truth, tmp_path):
    hour = datetime(2026, 11, 20, 8, tzinfo=UTC)
    generated = generate_events(seed=1, start_hour=hour, hours=1, events_per_hour=30)
    first, *others = [e for e in generated.truth.events if e.project_hash == PLUGIN.hash]
    hostile = replace(
        first,
        reason_info="<script>alert(1)</script> mail x@example.com " + "long " * 1000,
        project_version="9.9</script><script>alert(2)</script>",
    )
    truth.load_events(settings, [hostile, *others], [hour], loaded_at=hour + timedelta(hours=2))
    upsert_project(mongo_db, PLUGIN)
    build_analytics(settings, publish=False)

    render_report(settings, tmp_path, project=PLUGIN.hash)
    page = (tmp_path / "form-builder-pro.html").read_text()
    assert "<script>alert" not in page and "x@example.com" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; mail [email] long" in page
    [cell] = re.findall(r'<td class="answer">(&lt;script&gt;alert\(1\).*?)</td>', page, re.S)
    assert cell.endswith("…") and len(cell) < MAX_ANSWER_CHARS + 40  # cut, escaped


def test_cli_without_a_warehouse_says_so_and_writes_nothing(cli, settings, mongo_db, tmp_path):
    result = cli("report", "render", "--out", str(tmp_path / "report"))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"the warehouse {settings.duckdb_path} does not exist yet" in result.stderr
    assert not (tmp_path / "report").exists() and not settings.duckdb_path.exists()


def test_headline_names_a_partial_last_day():
    head = Headline(
        start_day=date(2026, 12, 2),
        end_day=date(2026, 12, 8),
        deactivations=4600,
        previous_deactivations=4857,
        previous_coverage="full",
        reasons=(),
        first_hour=datetime(2026, 11, 10, 14, tzinfo=UTC),
        last_hour=datetime(2026, 12, 8, 13, tzinfo=UTC),
    )
    assert head.partial_days == {date(2026, 12, 8): "data until 14:00 UTC only"}
    assert change_text(head) == (
        "−257 (−5%) against 4,857 in Nov 25 – Dec 1 (Dec 8 holds data until 14:00 UTC only)"
    )
    one_day = replace(head, start_day=date(2026, 12, 8), first_hour=datetime(2026, 12, 8, 3, tzinfo=UTC))
    assert one_day.partial_days == {date(2026, 12, 8): "data from 03:00 UTC until 14:00 UTC only"}


def test_no_projects_yet_gives_an_index_that_says_what_to_do(settings, mongo_db, tmp_path):
    summary = render_report(settings, tmp_path)
    assert summary.pages == [] and summary.charts == [] and summary.projects == []
    index = (tmp_path / INDEX_FILE).read_text()
    assert "No projects are registered" in index and "deact projects add" in index


def test_the_answers_limit_is_the_one_the_page_states():
    from reports.sections import ANSWERS_SQL, MAX_ANSWERS, section_sql

    assert section_sql(ANSWERS_SQL).rstrip().endswith(f"LIMIT {MAX_ANSWERS}")
