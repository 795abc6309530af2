"""Benchmark: `deact serve` side by side with the Go reference collector, same load, one run.

    .venv/bin/python bench/collector_vs_go.py                 # 90,000 requests each, 64 connections
    .venv/bin/python bench/collector_vs_go.py --requests 30000 --rounds 3

The Go collector (../shared/bench/go-collector, or --go-source) is a minimal collector that writes
one file per request without fsync; it is built here with Debian's `golang-go`. Both servers get
the same load generator (h2load, Debian `nghttp2-client`), the same real SDK body (form-encoded,
as WordPress sends it), the same number of connections and requests, one after the other, each
with a fresh temporary store; rounds alternate which goes first, so that other work on the
machine skews both alike. Ours answers 2xx only after its group commit is fsynced; Go's after an
unsynced write. Prints req/s of each and the ratio; the last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import (  # bench/ingest.py: one home for the load and the server handling
    CAPTURE,
    count_stored,
    process_tree_cpu_seconds,
    run_h2load,
    start_server,
    stop_server,
)

from deactivation.mongo import free_port
from deactivation.sdk_client import encode_form, site_user_agent

REPO = Path(__file__).resolve().parent.parent
GO_SOURCE = REPO.parent / "shared" / "bench" / "go-collector"


def build_go_collector(source: Path, workdir: Path) -> Path:
    """Compile the Go collector from a copy of its source (the source may be read-only)."""
    if not shutil.which("go"):
        raise SystemExit("`go` not found: apt-get install -y golang-go")
    build_dir = workdir / "go-src"
    shutil.copytree(source, build_dir)
    binary = workdir / "go-collector"
    environment = {
        **os.environ,
        "GOCACHE": str(workdir / "go-cache"),
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=build_dir, env=environment, check=True)
    return binary


def start_go(binary: Path, root: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(binary), "-addr", f"127.0.0.1:{port}", "-root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/deactivate", timeout=1)
        except urllib.error.HTTPError:
            return server  # 405 to a GET: it is listening
        except OSError:
            time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("the Go collector did not start")


def one_run(
    name: str, args: argparse.Namespace, workdir: Path, binary: Path, body: str, user_agent: str
) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    port = free_port()
    url = f"http://127.0.0.1:{port}/deactivate"
    if name == "go":
        server = start_go(binary, run_dir / "raw", port)
    else:
        server = start_server(run_dir / "raw", port, args)
    try:
        cpu_before = process_tree_cpu_seconds(server.pid)
        load = run_h2load(url, body, user_agent, args, run_dir)
        server_cpu = process_tree_cpu_seconds(server.pid) - cpu_before
    finally:
        if name == "go":
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        else:
            stop_server(server)
    stored, files = count_stored(run_dir / "raw")
    answered = load["two_xx"] + load["non_2xx"]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "server": name,
        "requests_per_s": round(answered / load["seconds"], 1),
        "two_xx": load["two_xx"],
        "non_2xx": load["non_2xx"],
        "stored": stored,
        "files": files,
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "server_cpu_us_per_request": round(server_cpu / answered * 1e6, 1) if answered else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=90_000, help="Requests per server per round.")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--load-threads", type=int, default=1, help="Threads of h2load.")
    parser.add_argument("--rounds", type=int, default=1, help="Rounds (each runs both servers).")
    parser.add_argument("--go-source", type=Path, default=GO_SOURCE, help="The Go collector's source folder.")
    args = parser.parse_args()
    # What start_server (bench/ingest.py) reads: the collector's own settings from the environment.
    args.workers = args.threads = args.committers = args.batch_max = None
    if not shutil.which("h2load"):
        raise SystemExit("`h2load` not found: apt-get install -y nghttp2-client")

    capture = json.loads(CAPTURE.read_text())
    body, user_agent = encode_form(capture["body"]), site_user_agent(capture["body"]["url"])
    workdir = Path(tempfile.mkdtemp(prefix="bench-vs-go-"))
    try:
        binary = build_go_collector(args.go_source, workdir)
        runs = []
        for round_number in range(args.rounds):
            order = ("ours", "go") if round_number % 2 == 0 else ("go", "ours")
            for name in order:
                result = one_run(name, args, workdir, binary, body, user_agent)
                runs.append(result)
                print(
                    f"round {round_number + 1} {name:4}  {result['requests_per_s']:>9} req/s  "
                    f"p99 {result['p99_ms']:.1f} ms  "
                    f"server CPU {result['server_cpu_us_per_request']} µs/req  "
                    f"2xx {result['two_xx']} stored {result['stored']}  load {result['load_average_1m']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def median_of(server: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs if r["server"] == server), 1)

    ours, go = median_of("ours", "requests_per_s"), median_of("go", "requests_per_s")
    ours_cpu = median_of("ours", "server_cpu_us_per_request")
    go_cpu = median_of("go", "server_cpu_us_per_request")
    summary = {
        "ours_requests_per_s": ours,
        "go_requests_per_s": go,
        "ratio": round(ours / go, 3),
        "ours_server_cpu_us_per_request": ours_cpu,
        "go_server_cpu_us_per_request": go_cpu,
        "cpu_ratio": round(go_cpu / ours_cpu, 3),
        "connections": args.connections,
        "requests": args.requests,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    print(f"ours {ours} req/s, Go {go} req/s: ratio {summary['ratio']} (median of {args.rounds} round(s))")
    print(f"server CPU per request: ours {ours_cpu} µs, Go {go_cpu} µs (Go/ours {summary['cpu_ratio']})")
    print("other work on the machine skews all of this; see load averages above")
    print(json.dumps(summary))
    all_stored = all(r["non_2xx"] == 0 and r["stored"] == r["two_xx"] for r in runs)
    return 0 if all_stored else 1


if __name__ == "__main__":
    sys.exit(main())
