"""Checks a command runs before any slow work or any write: each fails fast with one clear line.

A MongoDB that does not answer is reported after ~2 s (the library's clients wait 5 s, and pymongo's
error is a page long); a warehouse that does not exist yet, or a raw store that takes no writes, is
reported before anything was generated or processed.
"""

from __future__ import annotations

from pymongo.database import Database

from deact.errors import ServiceUnavailable, mongo_unreachable, without_credentials
from deactivation.mongo import get_database
from deactivation.raw_store import RawStoreError, open_raw_store
from deactivation.settings import Settings

#: How long a command waits for MongoDB before saying it does not answer.
MONGO_CHECK_TIMEOUT_S = 2.0


def require_mongo(settings: Settings, timeout_s: float = MONGO_CHECK_TIMEOUT_S) -> None:
    """ServiceUnavailable unless MONGODB_URI answers a ping within `timeout_s`."""
    from pymongo import MongoClient  # lazy: pymongo; keeps `deact --help` fast
    from pymongo.errors import ConfigurationError, PyMongoError  # lazy: pymongo; keeps `deact --help` fast

    timeout_ms = int(timeout_s * 1000)
    try:
        with MongoClient(
            settings.MONGODB_URI, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
        ) as client:
            client.admin.command("ping")
    except ConfigurationError as exc:
        raise ServiceUnavailable(f"MONGODB_URI cannot be used: {exc}") from exc
    except PyMongoError as exc:
        raise ServiceUnavailable(mongo_unreachable(settings.MONGODB_URI)) from exc


def require_warehouse(settings: Settings) -> None:
    """ServiceUnavailable when the DuckDB warehouse file does not exist yet (nothing to read)."""
    if settings.warehouse_kind == "duckdb" and not settings.duckdb_path.exists():
        raise ServiceUnavailable(
            f"the warehouse {settings.duckdb_path} does not exist yet: run `make demo` for demo data, "
            "or `deact pipeline run` once events arrived (WAREHOUSE_URL)"
        )


def require_writable_raw_store(settings: Settings) -> None:
    """ServiceUnavailable unless a probe file can be written to (and removed from) the raw store."""

    try:
        open_raw_store(settings).check_writable()
    except RawStoreError as exc:
        raise ServiceUnavailable(
            f"the raw store {without_credentials(settings.RAW_STORE_URL)} is not writable: {exc} "
            "(RAW_STORE_URL)"
        ) from exc


def registry_database(settings: Settings) -> Database:
    """The MongoDB database of the project registry, once MongoDB has answered (quickly)."""
    require_mongo(settings)
    return get_database(settings)
