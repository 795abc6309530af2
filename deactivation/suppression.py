"""The per-project suppression list: addresses that unsubscribed or bounced hard are never mailed.

MongoDB collection `suppressions` holds one document per project + address, keyed by a keyed hash
of the lower-cased address (never the address itself), so the list can be checked but not read
back into addresses. Unsubscribe links carry a signed token naming the project and that same hash:
the link identifies whom to suppress without putting the address in a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Literal

from pymongo.database import Database

from deactivation.projects import normalise_hash
from deactivation.redaction import keyed_hash
from deactivation.secret_keys import derived_key
from deactivation.settings import Settings

SUPPRESSIONS = "suppressions"
KEY_PURPOSE = "suppression"
TOKEN_PURPOSE = "unsubscribe"
#: Longest token accepted (a real one is ~150 characters); anything longer is refused unread.
MAX_TOKEN_CHARS = 256

SuppressionReason = Literal["unsubscribed", "hard_bounce", "operator"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class UnsubscribeTokenError(ValueError):
    """An unsubscribe token that is malformed or not signed by us."""


def address_hash(settings: Settings, project_hash: str, email: str) -> str:
    """The keyed hash an address is suppressed under for one project."""
    return keyed_hash(f"{project_hash}|{email.strip().lower()}", derived_key(settings, KEY_PURPOSE))


def suppress(
    db: Database, settings: Settings, project_hash: str, email: str, reason: SuppressionReason
) -> None:
    suppress_hash(db, project_hash, address_hash(settings, project_hash, email), reason)


def suppress_hash(db: Database, project_hash: str, hashed_address: str, reason: SuppressionReason) -> None:
    """Suppress by keyed hash (what an unsubscribe token carries); idempotent, first reason kept."""
    db[SUPPRESSIONS].update_one(
        {"_id": f"{project_hash}:{hashed_address}"},
        {
            "$setOnInsert": {
                "project_hash": project_hash,
                "address_hash": hashed_address,
                "reason": reason,
                "suppressed_at": datetime.now(UTC),
            }
        },
        upsert=True,
    )


def is_suppressed(db: Database, settings: Settings, project_hash: str, email: str) -> bool:
    key = f"{project_hash}:{address_hash(settings, project_hash, email)}"
    return db[SUPPRESSIONS].count_documents({"_id": key}, limit=1) > 0


def unsubscribe_token(settings: Settings, project_hash: str, email: str) -> str:
    """A signed, URL-safe token naming the project and the address's keyed hash."""
    hashed = address_hash(settings, project_hash, email)
    return f"{project_hash}.{hashed}.{_signature(settings, project_hash, hashed)}"


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[str, str]:
    """(project hash, address hash) from a token we signed; UnsubscribeTokenError otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise UnsubscribeTokenError("malformed unsubscribe token")
    project_hash, hashed, signature = token.split(".")
    try:
        if normalise_hash(project_hash) != project_hash or not _HEX64.match(hashed):
            raise UnsubscribeTokenError("malformed unsubscribe token")
    except ValueError:
        raise UnsubscribeTokenError("malformed unsubscribe token") from None
    if not hmac.compare_digest(signature, _signature(settings, project_hash, hashed)):
        raise UnsubscribeTokenError("unsubscribe token signature does not match")
    return project_hash, hashed


def _signature(settings: Settings, project_hash: str, hashed: str) -> str:
    digest = hmac.new(
        derived_key(settings, TOKEN_PURPOSE), f"{project_hash}.{hashed}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
