"""`deact analytics build`: a human summary, JSON with --json, and clear errors for bad input."""

from __future__ import annotations

import json


def test_analytics_build_prints_its_summary(deact):
    result = deact("analytics", "build", "--no-publish", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["hours_rebuilt"] == [] and summary["watermark"] is None

    human = deact("analytics", "build", "--no-publish")
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("rebuilt 0 hours and 0 days")

    bad = deact("analytics", "build", "--since", "2026-11-27 05:00")
    assert bad.returncode == 2 and "YYYY-MM-DDTHH" in bad.stderr
