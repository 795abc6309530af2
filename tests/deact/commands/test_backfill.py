"""`deact backfill` checks its arguments before any Prefect server starts."""

from __future__ import annotations

import pytest

from deact.cli import main


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start-hour", "2026-11-28T05", "--end-hour", "2026-11-27T05"],
         "the end hour 2026-11-27T05 is before the start hour 2026-11-28T05"),
        (["--start-hour", "2026-11-28T05", "--end-hour", "2026-11-31T05"],
         "--end-hour 2026-11-31T05: 2026-11 has no day 31"),
        (["--start-hour", "28.11.2026", "--end-hour", "2026-11-28T05"],
         "--start-hour must look like YYYY-MM-DDTHH"),
        (["--start-hour", "2026-11-28T00", "--end-hour", "2026-11-28T05", "--hours-per-run", "0"],
         "--hours-per-run must be at least 1, got 0"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_before_any_prefect_server_starts(
    deact, one_line_error, settings, monkeypatch, capsys, arguments, message
):
    started = []
    monkeypatch.setattr("deact.commands.backfill.configure_prefect", lambda s: started.append(s) or "")
    assert main(["backfill", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert started == [], "configure_prefect (which may start a temporary server) must not run"

    # As a user runs it: one line, and no Prefect database was created under DATA_DIR.
    one_line_error(deact("backfill", *arguments), 2, message)
    assert not (settings.DATA_DIR / "prefect").exists()
