"""Child processes the tools start in their own process group (a server with its workers): one way
to stop them, politely first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the process's group, wait up to `timeout_s`, then SIGKILL it; a no-op once it ended."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
