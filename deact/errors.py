"""The one error type commands raise for the user."""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""
