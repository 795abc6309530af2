"""Benchmark: the collector under load over loopback, then a count of what it stored.

    .venv/bin/python bench/ingest.py                        # 90,000 requests from h2load, 64 connections
    .venv/bin/python bench/ingest.py --requests 200000 --connections 256 --threads 128
    .venv/bin/python bench/ingest.py --no-keepalive         # 15 s of wrk, one connection per request
    .venv/bin/python bench/ingest.py --generator python     # no load tool installed: bounded Python load

Starts `deact serve` on a free port with a temporary raw store, drives POST /deactivate with a
real SDK capture (form-encoded, as WordPress sends it), stops the server, then counts the stored
envelopes. Prints req/s, p50/p99 latency, the 2xx count, the stored count, and the server's CPU
and load generator's CPU time per request with the ceiling they imply on idle cores (useful when
other work shares the machine, as it skews the rest). The last line is a JSON summary.

h2load (Debian: nghttp2-client) sends a fixed number of requests and waits for every answer, so
stored must equal 2xx exactly; it is the default. wrk (Debian: wrk) runs for a fixed time and is
used for one connection per request (h2load keeps its connections open). It stops at its deadline
without waiting for the requests still in flight: those may be stored and answered after it
stopped listening, so there `stored - 2xx` is between 0 and the number of connections and is
printed as `unanswered_at_cutoff`. The Python generator, like h2load, waits for every answer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deactivation.mongo import free_port
from deactivation.sdk_client import encode_form, post_many, site_user_agent
from deactivation.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO / "tests" / "fixtures" / "sdk_captures" / "004-v2x-found-better-plugin.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Requests per run of the generators bounded by count (h2load: ~15 s on the 2-core machine).
H2LOAD_REQUESTS = 90_000
PYTHON_REQUESTS = 5_000

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["User-Agent"] = %(user_agent)s
%(connection_header)s
wrk.body = %(body)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; failed = 0 end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else failed = failed + 1 end
end
function done(summary, latency, requests)
  local total_ok, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
  end
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", total_ok, total_failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII text


def collector_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The collector settings given on the command line; the rest come from the environment."""
    given = {
        "INGEST_WORKERS": args.workers,
        "INGEST_THREADS": args.threads,
        "INGEST_COMMITTERS": args.committers,
        "INGEST_BATCH_MAX": args.batch_max,
    }
    return {name: value for name, value in given.items() if value is not None}


def start_server(raw_dir: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    environment = {
        **os.environ,
        **{name: str(value) for name, value in collector_overrides(args).items()},
        "RAW_STORE_URL": str(raw_dir),
        "LOG_LEVEL": "WARNING",
        # One project sends everything here: its limit high enough never to refuse, but on, so
        # its cost per request is measured (loopback clients are exempt from the per-IP limit).
        "INGEST_RATE_PER_PROJECT": "1e9",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("deact")), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit("the collector did not become ready within 30 s")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and all its descendants (Linux /proc)."""
    total, pending = 0.0, [root_pid]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_wrk(url: str, body: str, user_agent: str, args: argparse.Namespace, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "user_agent": _lua_string(user_agent),
            "body": _lua_string(body),
            "connection_header": "" if args.keepalive else 'wrk.headers["Connection"] = "close"',
        }
    )
    command = [
        "wrk",
        f"-t{args.load_threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = next(line for line in output.splitlines() if line.startswith("RESULT "))
    ok, failed, socket_errors, duration_us, p50_us, p99_us = (int(v) for v in result.split()[1:])
    return {
        "generator": "wrk",
        "two_xx": ok,
        "non_2xx": failed,
        "socket_errors": socket_errors,
        "seconds": duration_us / 1e6,
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
    }


def run_h2load(url: str, body: str, user_agent: str, args: argparse.Namespace, workdir: Path) -> dict:
    body_file, log_file = workdir / "body.txt", workdir / "h2load.log"
    body_file.write_text(body)
    command = [
        "h2load",
        "--h1",
        f"--requests={args.requests or H2LOAD_REQUESTS}",
        f"--clients={args.connections}",
        f"--threads={args.load_threads}",
        f"--data={body_file}",
        "--header=Content-Type: application/x-www-form-urlencoded",
        f"--header=User-Agent: {user_agent}",
        f"--log-file={log_file}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # One line per answered request: start (µs since the epoch), status, time to answer (µs).
    answers = [tuple(int(v) for v in line.split("\t")) for line in log_file.read_text().splitlines()]
    started = min(start for start, _, _ in answers)
    finished = max(start + elapsed for start, _, elapsed in answers)
    latencies = sorted(elapsed for _, _, elapsed in answers)
    ok = sum(200 <= status < 300 for _, status, _ in answers)
    summary = next(line for line in output.splitlines() if line.startswith("requests:"))
    # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    counts = {name: int(number) for number, name in (part.split()[-2:] for part in summary.split(","))}
    return {
        "generator": "h2load",
        "two_xx": ok,
        "non_2xx": len(answers) - ok,
        "socket_errors": counts["errored"] + counts["timeout"],
        "seconds": (finished - started) / 1e6,
        "p50_ms": latencies[len(latencies) // 2] / 1000,
        "p99_ms": latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] / 1000,
    }


def run_python(url: str, body: dict, args: argparse.Namespace) -> dict:
    count = args.requests or PYTHON_REQUESTS
    started = time.perf_counter()
    statuses = post_many(url.rsplit("/deactivate", 1)[0], [body] * count, concurrency=args.connections)
    seconds = time.perf_counter() - started
    ok = sum(200 <= status < 300 for status in statuses)
    return {
        "generator": "python",
        "two_xx": ok,
        "non_2xx": count - ok,
        "socket_errors": statuses.count(0),
        "seconds": seconds,
        "p50_ms": None,  # post_many does not time single requests
        "p99_ms": None,
    }


def generator_cpu_seconds() -> float:
    """CPU of h2load or wrk (a reaped child) plus this process (the Python generator's threads)."""
    total = 0.0
    for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def count_stored(raw_dir: Path) -> tuple[int, int]:
    """(envelopes, files) under deactivate/."""
    envelopes = files = 0
    for path in (raw_dir / "deactivate").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".ndjson") and not path.name.startswith("."):
            files += 1
            envelopes += sum(1 for line in path.read_bytes().splitlines() if line.strip())
    return envelopes, files


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="Seconds of load (wrk).")
    parser.add_argument(
        "--requests",
        type=int,
        help=f"Requests to send (h2load: {H2LOAD_REQUESTS:,}, python: {PYTHON_REQUESTS:,}).",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--load-threads", type=int, default=1, help="Threads of h2load or wrk.")
    parser.add_argument("--workers", type=int, help="Collector worker processes (default: the setting).")
    parser.add_argument("--threads", type=int, help="Request threads per worker (default: the setting).")
    parser.add_argument(
        "--committers", type=int, default=None, help="Committer threads per worker (default: the setting)."
    )
    parser.add_argument("--batch-max", type=int, help="Envelopes per commit at most (default: the setting).")
    parser.add_argument(
        "--no-keepalive",
        dest="keepalive",
        action="store_false",
        help="One connection per request, as WordPress sends them.",
    )
    parser.add_argument(
        "--store-dir", default=None, help="Where the temporary raw store goes (default: the temp dir)."
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "h2load", "wrk", "python"],
        default="auto",
        help="auto: h2load, or wrk for --no-keepalive, else python when neither is installed.",
    )
    args = parser.parse_args()

    capture = json.loads(CAPTURE.read_text())
    generator = args.generator
    if generator == "auto":
        preferred = "h2load" if args.keepalive else "wrk"
        generator = preferred if shutil.which(preferred) else "python"
    if generator == "h2load" and not args.keepalive:
        raise SystemExit("h2load keeps its connections open; use --generator wrk with --no-keepalive")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.store_dir))
    port = free_port()
    url = f"http://127.0.0.1:{port}/deactivate"
    server = start_server(workdir / "raw", port, args)
    try:
        cpu_before = process_tree_cpu_seconds(server.pid)
        generator_cpu_before = generator_cpu_seconds()
        body, user_agent = encode_form(capture["body"]), site_user_agent(capture["body"]["url"])
        if generator == "h2load":
            load = run_h2load(url, body, user_agent, args, workdir)
        elif generator == "wrk":
            load = run_wrk(url, body, user_agent, args, workdir)
        else:
            load = run_python(url, capture["body"], args)
        server_cpu = process_tree_cpu_seconds(server.pid) - cpu_before
        generator_cpu = generator_cpu_seconds() - generator_cpu_before
    finally:
        stop_server(server)
    stored, files = count_stored(workdir / "raw")
    # What the server ran with: the command line's values over the environment's, local store.
    collector = Settings(**collector_overrides(args), RAW_STORE_URL=str(workdir / "raw"))
    answered = load["two_xx"] + load["non_2xx"]
    summary = {
        **load,
        # The Python generator, like WordPress, opens one connection per request.
        "keepalive": args.keepalive and generator != "python",
        "connections": args.connections,
        "workers": collector.INGEST_WORKERS,
        "threads": collector.INGEST_THREADS,
        "committers": collector.INGEST_COMMITTERS,
        "requests_per_s": round(answered / load["seconds"], 1),
        "stored": stored,
        "files": files,
        "envelopes_per_file": round(stored / files, 1) if files else 0,
        "unanswered_at_cutoff": stored - load["two_xx"],
        "server_cpu_us_per_request": round(server_cpu / answered * 1e6, 1) if answered else None,
        "generator_cpu_us_per_request": round(generator_cpu / answered * 1e6, 1) if answered else None,
        # What the CPU time alone would allow if no other work shared the machine's cores.
        "cpu_bound_requests_per_s": round(os.cpu_count() * answered / (server_cpu + generator_cpu))
        if answered
        else None,
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }
    shutil.rmtree(workdir, ignore_errors=True)
    connections = "keep-alive" if summary["keepalive"] else "one connection per request"
    print(f"generator         {generator} ({connections})")
    print(f"collector         {summary['workers']} workers x {summary['threads']} threads, ", end="")
    print(f"{summary['committers']} committer(s) each")
    print(f"requests/s        {summary['requests_per_s']}")
    if summary["p50_ms"] is not None:
        print(f"latency p50/p99   {summary['p50_ms']:.2f} ms / {summary['p99_ms']:.2f} ms")
    print(f"2xx               {summary['two_xx']} (non-2xx {summary['non_2xx']}, ", end="")
    print(f"socket errors {summary['socket_errors']})")
    print(f"stored            {stored} in {files} files ({summary['envelopes_per_file']} per fsync)")
    print(f"stored - 2xx      {summary['unanswered_at_cutoff']}")
    print(f"server CPU        {summary['server_cpu_us_per_request']} µs per request", end="")
    print(f" (load generator {summary['generator_cpu_us_per_request']} µs)")
    print(f"CPU ceiling       {summary['cpu_bound_requests_per_s']} req/s on {summary['cpus']} idle cores")
    print(f"load average      {summary['load_average_1m']:.1f} (other work on the machine skews all of this)")
    print(json.dumps(summary))
    ok = summary["non_2xx"] == 0 and 0 <= summary["unanswered_at_cutoff"] <= (
        args.connections if generator == "wrk" else 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
