"""Stopping a child's process group: politely, then by force, and never twice."""

from __future__ import annotations

import subprocess
import sys
import time

from deactivation.processes import stop_process_group

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    "time.sleep(60)"
)


def _start(code: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout.readline().strip() == "up"
    return process


def test_a_polite_process_stops_on_sigterm():
    process = _start("import time; print('up', flush=True); time.sleep(60)")
    started = time.monotonic()
    stop_process_group(process, timeout_s=10)
    assert process.returncode is not None and time.monotonic() - started < 5
    stop_process_group(process)  # already ended: nothing to do


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout():
    process = _start(STUBBORN)
    stop_process_group(process, timeout_s=0.5)
    assert process.returncode == -9
