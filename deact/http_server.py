"""One way to run an app of this project on Granian, the production HTTP server of both the
collector (`deact serve`) and the dashboard (`deact dashboard serve`)."""

from __future__ import annotations


def serve_forever(
    target: str,
    *,
    interface: str,
    host: str,
    port: int,
    workers: int,
    blocking_threads: int | None = None,
    header_read_timeout_s: float | None = None,
) -> None:
    """Serve the app factory `target` ("module:factory") until interrupted; `interface` is
    "asgi" or "wsgi"."""
    # lazy: the server loads only for the commands that serve; every other command starts without it.
    from granian import Granian
    from granian.constants import Interfaces  # lazy: as above
    from granian.http import HTTP1Settings  # lazy: as above

    options: dict = {}
    if blocking_threads is not None:
        options["blocking_threads"] = blocking_threads
    if header_read_timeout_s is not None:
        options["http1_settings"] = HTTP1Settings(header_read_timeout=int(header_read_timeout_s * 1000))
    Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces(interface),
        workers=workers,
        backlog=2048,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
        **options,
    ).serve()
