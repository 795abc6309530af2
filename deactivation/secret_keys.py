"""Keys derived from SECRET_KEY, one per purpose, so a key leaked from one use opens no other.

Production sets SECRET_KEY (the same on every instance). Locally, when it is unset, a random key
is created once under DATA_DIR/secret_key (mode 0600) and kept, so tokens and keyed hashes stay
valid across restarts of the local stack.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from deactivation.settings import Settings

_LOCAL_KEY_FILE = "secret_key"


def derived_key(settings: Settings, purpose: str) -> bytes:
    """The key for one purpose (e.g. "erasure", "unsubscribe", "dashboard-session")."""
    return hmac.new(_root_key(settings), purpose.encode("utf-8"), hashlib.sha256).digest()


def _root_key(settings: Settings) -> bytes:
    if settings.SECRET_KEY:
        return settings.SECRET_KEY.encode("utf-8")
    path = Path(settings.DATA_DIR) / _LOCAL_KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
