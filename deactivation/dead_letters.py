"""The typed reasons a raw record can fail: one enum for the pipeline, flows, generator and tests.

Every record the pipeline reads becomes exactly one valid event or exactly one dead letter whose
`error_type` is one of these values (stored as the value's text in `deactivation_errors`).
"""

from __future__ import annotations

from enum import StrEnum


class DeadLetterType(StrEnum):
    #: Not JSON, not an envelope, or an envelope outside its hour folder.
    UNPARSEABLE = "unparseable"
    #: No project hash, not a UUID, or no project registered under it.
    UNKNOWN_PROJECT = "unknown_project"
    #: A reason id neither built in nor registered for the project.
    INVALID_REASON = "invalid_reason"
    #: A site field that cannot be cast (a count beyond int64, an unreadable size, ...).
    INVALID_FIELD = "invalid_field"
    #: The same event id seen again in the window, or the same answer re-sent within minutes.
    DUPLICATE = "duplicate"
    #: The site (or its admin e-mail) was erased on request; kept without content.
    ERASED = "erased"


#: Every type, in the order reports list them.
DEAD_LETTER_TYPES: tuple[str, ...] = tuple(member.value for member in DeadLetterType)
