"""Benchmark: the dashboard's list endpoint, overview page and CSV export (issue 13 targets).

- List: N latest-state documents of one project in a local MongoDB (SecantusDB, started here):
  p50/p99 of the first page and of a deep page (keyset: should match), without a filter, with an
  indexed filter (reason) and with a residual one (locale); and MongoDB's plan for the list query
  (explain: the index it walks). Target p99 <= 50 ms.
- Overview: the 90-day overview page (summary, every chart from the published aggregates) for a
  DuckDB history of --history-rows synthetic deactivations published by the analytics build.
  Target p99 <= 300 ms of server time.
- CSV: the export of that project's whole history from DuckDB: rows/s and the process's resident
  memory while it streams. Target >= 100k rows/s, memory flat.

    .venv/bin/python bench/dashboard.py [--docs 1000000] [--history-rows 2000000] [--repeat 50]
        [--mongo-uri mongodb://HOST:27017] [--skip-list] [--skip-csv] [--skip-overview]

Run on the shared 2-core development machine: figures are indicative (other work runs alongside).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from dashboard_app import create_app
from dashboard_app.filters import ListFilters
from dashboard_app.history import csv_lines
from dashboard_app.state import explain_list
from deactivation.api_keys import create_key
from deactivation.generator import DEMO_PROJECTS
from deactivation.mongo import DEACTIVATIONS, SITES, LocalMongoServer, get_database
from deactivation.projects import upsert_project
from deactivation.settings import Settings
from deactivation.warehouse import open_warehouse
from reports.analytics import build_analytics

PROJECT = DEMO_PROJECTS[0]
REASONS = list(PROJECT.reasons)
LOCALES = ["en_US", "de_DE", "fr_FR", "es_ES", "pt_BR", "ja", "nb_NO"]
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
#: insert_many batch (unordered): measured on SecantusDB, larger batches stop helping past ~10k.
BATCH = 10_000


def _load_bench_module(name: str):
    """bench/analytics.py's warehouse filler (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill_latest_state(settings: Settings, documents: int, first: int = 0) -> None:
    """Latest-state deactivations (one per site) number `first` to `documents` - 1, and their site
    documents: insert_many of BATCH documents, unordered (the fastest bulk load measured)."""
    from deactivation.mongo import ensure_latest_state_indexes

    database = get_database(settings)
    ensure_latest_state_indexes(database)
    for start in range(first, documents, BATCH):
        deactivations, sites = [], []
        for i in range(start, min(start + BATCH, documents)):
            site_url = f"https://site-{i}.example.com"
            received_at = FIRST + timedelta(seconds=17 * i)
            document_id = f"{PROJECT.hash}|{site_url}"
            shared = {
                "_id": document_id,
                "event_id": f"{i:032x}",
                "project_hash": PROJECT.hash,
                "site_url": site_url,
                "received_at": received_at,
                "order_key": f"{received_at.isoformat()}|{i:032x}",
                "project_version": ["2.2.0", "2.3.1", "2.4.0"][i % 3],
                "wp_version": "6.5.3",
                "wp_version_mm": "6.5",
                "php_version": "8.2.36",
                "php_version_mm": "8.2",
                "locale": LOCALES[i % len(LOCALES)],
            }
            reason = REASONS[(i * 7) % len(REASONS)]
            deactivations.append(
                shared
                | {
                    "reason_id": reason,
                    "reason_label": PROJECT.reasons[reason],
                    "reason_info": "" if i % 2 else "x",
                }
            )
            sites.append(
                shared
                | {"site_name": f"Site {i}", "admin_email": f"admin@site-{i}.example.com", "first_name": "A"}
            )
        database[DEACTIVATIONS].insert_many(deactivations, ordered=False)
        database[SITES].insert_many(sites, ordered=False)
    publish_counts(database, documents)


def publish_counts(database, documents: int) -> None:
    """The per-hour and per-day counts of those documents, as the analytics build publishes them
    (the list sizes its first window from them; here one deactivation per site, so exact)."""
    hourly: Counter[tuple[datetime, str]] = Counter()
    for i in range(documents):
        received_at = FIRST + timedelta(seconds=17 * i)
        hourly[(received_at.replace(minute=0, second=0), REASONS[(i * 7) % len(REASONS)])] += 1
    daily: Counter[tuple[str, str]] = Counter()
    for (hour, reason), count in hourly.items():
        daily[(hour.date().isoformat(), reason)] += count
    for name, counts, slot in (
        ("hourly_reason_counts", hourly, "hour"),
        ("daily_reason_counts", daily, "day"),
    ):
        collection = database[name]
        collection.delete_many({"project_hash": PROJECT.hash})
        collection.create_index([("project_hash", 1), (slot, 1)])
        rows = [
            {"project_hash": PROJECT.hash, slot: at, "reason_id": reason, "deactivations": count}
            for (at, reason), count in counts.items()
        ]
        for start in range(0, len(rows), BATCH):
            collection.insert_many(rows[start : start + BATCH], ordered=False)


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   (n={len(ordered)})"


def time_get(client, url: str, headers: dict[str, str], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code, response.get_data()[:300])
    return seconds


def deep_cursor(client, base: str, headers: dict[str, str], pages: int) -> str:
    """The cursor after walking `pages` pages of 200 (what a client paging deep would hold)."""
    cursor = None
    for _ in range(pages):
        url = (
            base
            + ("&" if "?" in base else "?")
            + urlencode({"limit": 200, **({"cursor": cursor} if cursor else {})})
        )
        following = client.get(url, headers=headers).json["next_cursor"]
        if following is None:  # fewer matching documents than `pages` pages: the last page it is
            break
        cursor = following
    return cursor


def bench_list(settings: Settings, app, key: str, repeat: int, deep_pages: int) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    base = f"/api/v1/projects/{PROJECT.hash}/deactivations"
    for label, query in (
        ("no filter", ""),
        ("reason (indexed)", "reason=other"),
        ("locale (residual)", "locale=de_DE"),
    ):
        first = f"{base}?{query}"
        cursor = deep_cursor(client, first, headers, deep_pages)
        deep = f"{base}?{urlencode({**dict(p.split('=') for p in query.split('&') if p), 'cursor': cursor})}"
        time_get(client, first, headers, 3)  # warm
        print(f"list {label:<18} first page   {percentiles(time_get(client, first, headers, repeat))}")
        deep_times = time_get(client, deep, headers, repeat)
        print(f"list {label:<18} page {deep_pages + 1:<7} {percentiles(deep_times)}")
    for label, filters in (("no filter", ListFilters()), ("reason", ListFilters(reason="other"))):
        plan = explain_list(get_database(settings), PROJECT.hash, filters)
        print(f"explain {label:<10} {json.dumps(_plan_summary(plan))}")


def _plan_summary(plan: dict) -> dict:
    """The stages and index names of the winning plan (whatever the server's explain format)."""
    found: dict[str, list] = {"stages": [], "indexes": []}

    def walk(node):
        if isinstance(node, dict):
            if "stage" in node:
                found["stages"].append(node["stage"])
            if "indexName" in node:
                found["indexes"].append(node["indexName"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan.get("queryPlanner", {}).get("winningPlan", plan))
    found["docsExamined"] = plan.get("executionStats", {}).get("totalDocsExamined")
    return found


def bench_csv(settings: Settings, history_rows: int) -> None:
    analytics_bench = _load_bench_module("analytics")
    started = time.perf_counter()
    analytics_bench.fill_warehouse(settings, history_rows, 90)
    print(f"filled DuckDB with {history_rows} deactivations in {time.perf_counter() - started:.1f} s")
    warehouse = open_warehouse(settings)
    rows = 0
    rss_samples = []
    started = time.perf_counter()
    for piece in csv_lines(warehouse, get_database(settings), PROJECT.hash, ListFilters(), personal=False):
        rows += piece.count("\r\n")
        rss_samples.append(_rss_mib())
    seconds = time.perf_counter() - started
    rows -= 1  # header
    print(
        f"CSV export {rows} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s; resident memory while "
        f"streaming: first piece {rss_samples[0]:.0f} MiB, "
        f"middle {rss_samples[len(rss_samples) // 2]:.0f} MiB, "
        f"last {rss_samples[-1]:.0f} MiB, max {max(rss_samples):.0f} MiB"
    )


def bench_overview(settings: Settings, app, repeat: int) -> None:
    """The 90-day overview over the aggregates the analytics build publishes from the warehouse."""
    analytics_bench = _load_bench_module("analytics")
    started = time.perf_counter()
    summary = build_analytics(settings, full=True)
    published = sum(summary.published.values())
    print(f"analytics build + publish in {time.perf_counter() - started:.1f} s ({published} documents)")
    database = get_database(settings)
    _, operator = create_key(database, settings, project_hash=None, scope="read", name="bench overview")
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = form.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"key": operator, "csrf_token": token})
    first_day = analytics_bench.FIRST_HOUR.date()
    url = f"/projects/{PROJECT.hash}?period=custom&from={first_day}&to={first_day + timedelta(days=89)}"
    cold = time_get(client, url, {}, 1)  # the first view loads the aggregates from MongoDB
    print(f"overview 90 days, first view (loads aggregates)   {cold[0] * 1000:.0f} ms")
    print(f"overview 90 days (all charts, cached rows)   {percentiles(time_get(client, url, {}, repeat))}")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs",
        default="1000000",
        help="Latest-state documents (list benchmark); several, comma-separated, measure each size in turn.",
    )
    parser.add_argument(
        "--history-rows", type=int, default=2_000_000, help="DuckDB history (~half one project)."
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--deep-pages", type=int, default=50, help="Pages of 200 walked for the deep page.")
    parser.add_argument("--skip-list", action="store_true")
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--skip-overview", action="store_true", help="(publishing is slow on SecantusDB)")
    parser.add_argument(
        "--mongo-uri",
        default=None,
        help="A real MongoDB to use instead of starting SecantusDB (database: bench).",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        root = Path(folder)
        with contextlib.ExitStack() as stack:
            uri = args.mongo_uri or stack.enter_context(LocalMongoServer(root / "mongo")).uri
            settings = Settings(
                RAW_STORE_URL=str(root / "raw"),
                WAREHOUSE_URL=f"duckdb:///{root / 'warehouse.duckdb'}",
                MONGODB_URI=uri,
                MONGODB_DB="bench",
                DATA_DIR=root / "data",
                DASHBOARD_RATE_LIMIT="1000000 per minute",
                _env_file=None,
            )
            database = get_database(settings)
            database.client.drop_database("bench")
            for project in DEMO_PROJECTS:
                upsert_project(database, project)
            app = create_app(settings)
            if not args.skip_list:
                _, key = create_key(database, settings, project_hash=PROJECT.hash, scope="read", name="bench")
                filled = 0
                for size in sorted(int(text) for text in args.docs.split(",")):
                    started = time.perf_counter()
                    fill_latest_state(settings, size, filled)
                    seconds = time.perf_counter() - started
                    rate = (size - filled) / seconds
                    print(
                        f"inserted {size - filled} latest-state documents (+ sites) "
                        f"in {seconds:.1f} s ({rate:,.0f}/s)"
                    )
                    filled = size
                    app = create_app(settings)  # ensures the dashboard's indexes on the filled collection
                    print(f"--- list with {size} latest-state documents")
                    bench_list(settings, app, key, args.repeat, args.deep_pages)
            if not args.skip_csv or not args.skip_overview:
                bench_csv(settings, args.history_rows)
            if not args.skip_overview:
                bench_overview(settings, app, args.repeat)
            database.client.drop_database("bench")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
