"""The raw store: durable, append-only files of envelopes, laid out by route and hour.

Layout (the contract every later stage reads)::

    RAW_STORE_URL/<route>/YYYY/MM/DD/HH/<first-event-id>.json     one envelope
    RAW_STORE_URL/<route>/YYYY/MM/DD/HH/<first-event-id>.ndjson   several, one per line
    RAW_STORE_URL/rejected/YYYY/MM/DD/HH/<rejection-id>.json      a rejected request, with its reason

The hour is the hour of the envelope's ``received_at`` (UTC). File names are server-made ids,
never client input. A file becomes visible only complete: locally it is written under a dot-name,
flushed, fsynced and renamed (readers skip dot-names); on GCS an object exists only once its upload
completed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from deactivation.envelope import REJECTED_PREFIX, envelope_to_json, format_timestamp, new_event_id
from deactivation.settings import Settings

RAW_SUFFIXES = (".json", ".ndjson")


class RawStoreError(OSError):
    """The store could not durably write or read (the collector answers 503)."""


def hour_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_path(route: str, hour: datetime) -> str:
    """deactivate/2026/11/28/01 for route 'deactivate' and 2026-11-28T01:xx UTC."""
    return f"{route}/{hour.astimezone(UTC):%Y/%m/%d/%H}"


def parse_hour(text: str) -> datetime:
    """Parse YYYY-MM-DDTHH (the CLI's hour format) into an aware UTC datetime."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"hour must look like YYYY-MM-DDTHH (UTC), got {text!r}") from exc


def hours_ending_at(last_hour: datetime, count: int) -> list[datetime]:
    """The `count` hours ending with `last_hour`, oldest first."""
    if count < 1:
        raise ValueError("the number of hours must be at least 1")
    last = hour_floor(last_hour)
    return [last - timedelta(hours=offset) for offset in range(count - 1, -1, -1)]


def _hour_of_received_at(received_at: str) -> str:
    # received_at is always "YYYY-MM-DDTHH:MM:SS.ffffffZ": the hour folder is a slice of it.
    return f"{received_at[0:4]}/{received_at[5:7]}/{received_at[8:10]}/{received_at[11:13]}"


@dataclass(frozen=True)
class RawFile:
    """One stored file: its path relative to the store root, and its full URL or path."""

    relative_path: str
    url: str


class RawStore:
    """Local directory or gs:// bucket behind one interface."""

    def __init__(self, url: str, *, gcs_endpoint: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.is_gcs = self.url.startswith("gs://")
        self._known_dirs: set[str] = set()
        if self.is_gcs:
            # gcsfs.core's class, not `gcsfs.GCSFileSystem`: the latter, by default, is an
            # "experimental" subclass that first asks a gRPC API for the bucket's layout (zonal or
            # hierarchical), which waits 60 s against an emulator and which plain buckets never need.
            from gcsfs.core import GCSFileSystem

            # No listings cache: a reader must see files a collector wrote after its last listing.
            options: dict[str, Any] = {"use_listings_cache": False}
            if gcs_endpoint:
                options.update(endpoint_url=gcs_endpoint, token="anon")
            self._gcs = GCSFileSystem(**options)
            self._root = self.url.removeprefix("gs://")
        else:
            self._root = str(Path(self.url).resolve())

    @classmethod
    def from_settings(cls, settings: Settings) -> RawStore:
        return cls(settings.RAW_STORE_URL, gcs_endpoint=settings.STORAGE_EMULATOR_HOST)

    # --- writing ---------------------------------------------------------------------------------
    def write_envelopes(self, route: str, envelopes: Iterable[dict[str, Any]]) -> list[str]:
        """Durably write envelopes (dicts with a received_at string), one file per hour.

        Returns the relative paths written. Raises RawStoreError when anything failed; then
        the caller must not acknowledge any of these envelopes.
        """
        by_hour: dict[str, list[bytes]] = {}
        first_ids: dict[str, str] = {}
        for envelope in envelopes:
            hour = _hour_of_received_at(envelope["received_at"])
            by_hour.setdefault(hour, []).append(envelope_to_json(envelope))
            first_ids.setdefault(hour, envelope["event_id"])
        written = []
        for hour, lines in by_hour.items():
            suffix = ".json" if len(lines) == 1 else ".ndjson"
            relative = f"{route}/{hour}/{first_ids[hour]}{suffix}"
            self.write_bytes(relative, b"\n".join(lines) + b"\n")
            written.append(relative)
        return written

    def write_rejected(self, record: dict[str, Any], *, at: datetime) -> str:
        """Keep a rejected request (reason and raw body) for diagnosis."""
        rejection_id = new_event_id()
        relative = f"{hour_path(REJECTED_PREFIX, at)}/{rejection_id}.json"
        payload = {"rejection_id": rejection_id, "rejected_at": format_timestamp(at), **record}
        self.write_bytes(relative, orjson.dumps(payload) + b"\n")
        return relative

    def write_bytes(self, relative: str, data: bytes) -> None:
        try:
            if self.is_gcs:
                self._gcs.pipe_file(f"{self._root}/{relative}", data)
            else:
                self._write_local_atomically(relative, data)
        except OSError as exc:
            raise RawStoreError(f"could not store {relative}: {exc}") from exc
        except Exception as exc:  # gcsfs/google errors are not OSError; the caller answers 503
            raise RawStoreError(f"could not store {relative}: {type(exc).__name__}") from exc

    def _write_local_atomically(self, relative: str, data: bytes) -> None:
        final = os.path.join(self._root, relative)
        directory = os.path.dirname(final)
        if directory not in self._known_dirs:
            os.makedirs(directory, exist_ok=True)
            self._known_dirs.add(directory)
        temporary = os.path.join(directory, "." + os.path.basename(final) + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        os.close(fd)
        os.rename(temporary, final)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)

    def check_writable(self) -> None:
        """Write and remove a probe file; raises RawStoreError when the store is not writable."""
        relative = f"_readyz/{new_event_id()}.probe"
        self.write_bytes(relative, b"ok")
        try:
            if self.is_gcs:
                self._gcs.rm_file(f"{self._root}/{relative}")
            else:
                os.unlink(os.path.join(self._root, relative))
        except Exception as exc:
            raise RawStoreError(f"could not remove readiness probe: {type(exc).__name__}") from exc

    # --- reading ---------------------------------------------------------------------------------
    def list_hour(self, route: str, hour: datetime) -> list[RawFile]:
        """The complete envelope files of one route and hour, sorted by name."""
        prefix = hour_path(route, hour)
        if self.is_gcs:
            try:
                names = [p.rsplit("/", 1)[-1] for p in self._gcs.ls(f"{self._root}/{prefix}", detail=False)]
            except FileNotFoundError:
                names = []
        else:
            directory = os.path.join(self._root, prefix)
            names = os.listdir(directory) if os.path.isdir(directory) else []
        files = [
            RawFile(f"{prefix}/{name}", self.url_for(f"{prefix}/{name}"))
            for name in sorted(names)
            if name.endswith(RAW_SUFFIXES) and not name.startswith(".")
        ]
        return files

    def url_for(self, relative: str) -> str:
        if self.is_gcs:
            return f"gs://{self._root}/{relative}"
        return os.path.join(self._root, relative)

    def read_bytes(self, relative: str) -> bytes:
        if self.is_gcs:
            return self._gcs.cat_file(f"{self._root}/{relative}")
        with open(os.path.join(self._root, relative), "rb") as handle:
            return handle.read()

    def iter_lines(self, relative: str) -> Iterator[tuple[int, bytes]]:
        """(1-based line number, line) of a raw file; a .json file is one record."""
        data = self.read_bytes(relative)
        if relative.endswith(".json"):
            yield 1, data.strip()
            return
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield number, line
