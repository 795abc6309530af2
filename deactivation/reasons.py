"""Deactivation reasons: the SDK's built-in ids and labels, and the reserved theme id."""

from __future__ import annotations

#: The eight ids every SDK sends (labels as the dashboard shows them).
BUILT_IN_REASONS: dict[str, str] = {
    "could-not-understand": "Couldn't understand",
    "found-better-plugin": "Found a better plugin",
    "not-have-that-feature": "Missing a specific feature",
    "is-not-working": "Not working",
    "looking-for-other": "Not what I was looking for",
    "did-not-work-as-expected": "Didn't work as expected",
    "other": "Other",
    "none": "No reason given",
}

#: A theme switch carries no reason fields (the SDK asks no question); it is recorded under this
#: reserved id so that reports count it beside the chosen reasons instead of dropping it.
THEME_SWITCH = "theme-switch"
THEME_SWITCH_LABEL = "Theme switched (no reason asked)"

RESERVED_REASON_IDS = frozenset({*BUILT_IN_REASONS, THEME_SWITCH})


def reason_labels(custom_reasons: dict[str, str] | None = None) -> dict[str, str]:
    """Every valid id → label for a project: built-in, the theme id, then its custom reasons."""
    return {**BUILT_IN_REASONS, THEME_SWITCH: THEME_SWITCH_LABEL, **(custom_reasons or {})}
