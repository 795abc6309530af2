"""The raw store: durable, append-only files of envelopes, laid out by route and hour.

Layout (the contract every later stage reads)::

    RAW_STORE_URL/<route>/YYYY/MM/DD/HH/<first-event-id>.json     one envelope
    RAW_STORE_URL/<route>/YYYY/MM/DD/HH/<first-event-id>.ndjson   several, one per line
    RAW_STORE_URL/rejected/YYYY/MM/DD/HH/<rejection-id>.json      a rejected request, with its reason

The hour is the hour of the envelope's ``received_at`` (UTC). File names are server-made ids,
never client input. A file becomes visible only complete: locally it is written under a dot-name,
flushed, fsynced and renamed (readers skip dot-names); on GCS an object exists only once its upload
completed.

`RawStore` is the interface; `LocalRawStore` (a directory) and `GcsRawStore` (gs://) implement it,
and `open_raw_store` picks one from the settings, as `open_warehouse` does for the warehouse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

from deactivation.envelope import REJECTED_PREFIX, envelope_to_json, format_timestamp, new_event_id
from deactivation.settings import Settings

RAW_SUFFIXES = (".json", ".ndjson")


class RawStoreError(OSError):
    """The store could not durably write or read (the collector answers 503)."""


class SerialisedEnvelope(NamedTuple):
    """An envelope already turned into its stored JSON line (done in the request that made it, so
    one request's content can never make another request's write fail)."""

    event_id: str
    received_at: str  # YYYY-MM-DDTHH:MM:SS.ffffffZ
    line: bytes


def serialise_envelope(envelope: dict[str, Any]) -> SerialisedEnvelope:
    """The stored form of an envelope dict; raises (orjson.JSONEncodeError, TypeError) if it has none."""
    line = envelope_to_json(envelope)
    received_at = envelope["received_at"]
    if isinstance(received_at, datetime):
        received_at = format_timestamp(received_at)
    return SerialisedEnvelope(envelope["event_id"], received_at, line)


def hour_path(route: str, hour: datetime) -> str:
    """deactivate/2026/11/28/01 for route 'deactivate' and 2026-11-28T01:xx UTC."""
    return f"{route}/{hour.astimezone(UTC):%Y/%m/%d/%H}"


def _hour_of_received_at(received_at: str) -> str:
    # received_at is always "YYYY-MM-DDTHH:MM:SS.ffffffZ": the hour folder is a slice of it.
    return f"{received_at[0:4]}/{received_at[5:7]}/{received_at[8:10]}/{received_at[11:13]}"


def split_records(relative_path: str, data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line, text) of a raw file: a .json file is one record, a .ndjson file one per line.

    The one way a raw file is cut into records (the pipeline, the benchmarks and the tests use it).
    """
    if not relative_path.endswith(".ndjson"):
        yield 1, data
        return
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield number, line


@dataclass(frozen=True)
class RawFile:
    """One stored file: its path relative to the store root, and its full URL or path."""

    relative_path: str
    url: str


class RawStore(Protocol):
    """What every stage needs of the raw store, wherever it lives."""

    url: str

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Durably write one whole file (replacing any file of that name); RawStoreError if not."""
        ...

    def read_bytes(self, relative: str) -> bytes: ...

    def list_names(self, prefix: str) -> list[str]:
        """Names of the complete files directly under `prefix` (no folders, no temporary files)."""
        ...

    def delete(self, relative: str) -> None: ...

    def url_for(self, relative: str) -> str: ...

    def write_lines(self, route: str, envelopes: Iterable[SerialisedEnvelope]) -> list[str]: ...

    def write_envelopes(self, route: str, envelopes: Iterable[dict[str, Any]]) -> list[str]: ...

    def write_rejected(self, record: dict[str, Any], *, at: datetime) -> str: ...

    def check_writable(self, route: str = ...) -> None: ...

    def list_hour(self, route: str, hour: datetime) -> list[RawFile]: ...

    def list_folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under `prefix`."""
        ...

    def list_hours(self, route: str, before: datetime | None = None) -> Iterator[datetime]: ...

    def iter_files(self, route: str) -> Iterator[RawFile]: ...

    def delete_hour(self, route: str, hour: datetime) -> int: ...


class _RawStoreBase:
    """The layout, shared by both stores; subclasses do the file operations."""

    url: str

    # --- file operations (per store) ----------------------------------------------------------------
    def write_bytes(self, relative: str, data: bytes) -> None:
        raise NotImplementedError

    def read_bytes(self, relative: str) -> bytes:
        raise NotImplementedError

    def list_names(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def delete(self, relative: str) -> None:
        raise NotImplementedError

    def url_for(self, relative: str) -> str:
        raise NotImplementedError

    def list_folders(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def delete_hour(self, route: str, hour: datetime) -> int:
        """Remove one hour folder of a route with every file in it; returns the files removed."""
        raise NotImplementedError

    # --- the layout ---------------------------------------------------------------------------------
    def write_lines(self, route: str, envelopes: Iterable[SerialisedEnvelope]) -> list[str]:
        """Durably write serialised envelopes, one file per hour; returns the relative paths.

        Raises RawStoreError when anything failed; then the caller must not acknowledge any of them.
        """
        by_hour: dict[str, list[bytes]] = {}
        first_ids: dict[str, str] = {}
        for envelope in envelopes:
            hour = _hour_of_received_at(envelope.received_at)
            by_hour.setdefault(hour, []).append(envelope.line)
            first_ids.setdefault(hour, envelope.event_id)
        written = []
        for hour, lines in by_hour.items():
            suffix = ".json" if len(lines) == 1 else ".ndjson"
            relative = f"{route}/{hour}/{first_ids[hour]}{suffix}"
            self.write_bytes(relative, b"\n".join(lines) + b"\n")
            written.append(relative)
        return written

    def write_envelopes(self, route: str, envelopes: Iterable[dict[str, Any]]) -> list[str]:
        """`write_lines` for envelope dicts (the generator, the demo and tests)."""
        return self.write_lines(route, (serialise_envelope(envelope) for envelope in envelopes))

    def write_rejected(self, record: dict[str, Any], *, at: datetime) -> str:
        """Keep a rejected request (reason and redacted body) for diagnosis."""
        rejection_id = new_event_id()
        relative = f"{hour_path(REJECTED_PREFIX, at)}/{rejection_id}.json"
        payload = {"rejection_id": rejection_id, "rejected_at": format_timestamp(at), **record}
        self.write_bytes(relative, orjson.dumps(payload) + b"\n")
        return relative

    def check_writable(self, route: str = "deactivate") -> None:
        """Write and remove a probe file in the folder the next event of `route` would go to
        (this hour's); raises RawStoreError when that is not possible."""
        now = datetime.now(UTC)
        relative = f"{hour_path(route, now)}/.readyz-{new_event_id()}.probe"
        self.write_bytes(relative, b"ok")
        try:
            self.delete(relative)
        except Exception as exc:
            raise RawStoreError(f"could not remove readiness probe: {type(exc).__name__}") from exc

    def list_hour(self, route: str, hour: datetime) -> list[RawFile]:
        """The complete envelope files of one route and hour, sorted by name."""
        prefix = hour_path(route, hour)
        return [
            RawFile(f"{prefix}/{name}", self.url_for(f"{prefix}/{name}"))
            for name in sorted(self.list_names(prefix))
            if name.endswith(RAW_SUFFIXES)
        ]

    def list_hours(self, route: str, before: datetime | None = None) -> Iterator[datetime]:
        """The hour folders of a route, oldest first (only `YYYY/MM/DD/HH` folders; anything else
        under the route is no hour and left alone). With `before`, only hours starting before it,
        and folders wholly after it are not even listed (retention walks years of folders)."""
        for year in self._numbered_folders(route, 4):
            if year < 1:
                continue
            if before is not None and datetime(year, 1, 1, tzinfo=UTC) >= before:
                return
            for month in self._numbered_folders(f"{route}/{year:04d}", 2):
                if not 1 <= month <= 12:
                    continue
                if before is not None and datetime(year, month, 1, tzinfo=UTC) >= before:
                    return
                for day in self._numbered_folders(f"{route}/{year:04d}/{month:02d}", 2):
                    for hour in self._numbered_folders(f"{route}/{year:04d}/{month:02d}/{day:02d}", 2):
                        try:
                            start = datetime(year, month, day, hour, tzinfo=UTC)
                        except ValueError:
                            continue
                        if before is not None and start >= before:
                            return
                        yield start

    def iter_files(self, route: str) -> Iterator[RawFile]:
        """Every complete file of a route, hour by hour, oldest first: one hour's listing at a
        time, so a store of years of small files is walked without listing it whole."""
        for hour in self.list_hours(route):
            yield from self.list_hour(route, hour)

    def _numbered_folders(self, prefix: str, width: int) -> list[int]:
        names = self.list_folders(prefix)
        return sorted(int(name) for name in names if len(name) == width and name.isdigit())


class LocalRawStore(_RawStoreBase):
    """A local directory; files are written under a dot-name, fsynced and renamed into place."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._root = str(Path(self.url).resolve())
        self._known_dirs: set[str] = set()

    def write_bytes(self, relative: str, data: bytes) -> None:
        try:
            self._write_atomically(relative, data)
        except OSError as exc:
            raise RawStoreError(f"could not store {relative}: {exc}") from exc

    def _write_atomically(self, relative: str, data: bytes) -> None:
        final = os.path.join(self._root, relative)
        directory = os.path.dirname(final)
        if directory not in self._known_dirs:
            os.makedirs(directory, exist_ok=True)
            self._known_dirs.add(directory)
        temporary = os.path.join(directory, "." + os.path.basename(final) + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            # The folder went away after it was first made (retention, an operator): make it again.
            self._known_dirs.discard(directory)
            os.makedirs(directory, exist_ok=True)
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

    def read_bytes(self, relative: str) -> bytes:
        with open(os.path.join(self._root, relative), "rb") as handle:
            return handle.read()

    def list_names(self, prefix: str) -> list[str]:
        directory = os.path.join(self._root, prefix)
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e.name for e in entries if e.is_file() and not e.name.startswith(".")]

    def delete(self, relative: str) -> None:
        os.unlink(os.path.join(self._root, relative))

    def url_for(self, relative: str) -> str:
        return os.path.join(self._root, relative)

    def list_folders(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(os.path.join(self._root, prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]

    def delete_hour(self, route: str, hour: datetime) -> int:
        directory = os.path.join(self._root, hour_path(route, hour))
        removed = 0
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return 0
        for entry in entries:  # temporary dot-files a crashed writer left go too
            if entry.is_file():
                os.unlink(entry.path)
                removed += not entry.name.startswith(".")
        self._known_dirs.discard(directory)
        # The hour folder, then day, month and year folders that became empty.
        for _ in range(4):
            try:
                os.rmdir(directory)
            except OSError:  # not empty (or already gone): the folders above are not empty either
                break
            directory = os.path.dirname(directory)
        return removed


class GcsRawStore(_RawStoreBase):
    """A gs:// bucket (and prefix); an object exists only once its upload completed."""

    def __init__(self, url: str, *, gcs_endpoint: str | None = None) -> None:
        # gcsfs.core's class, not `gcsfs.GCSFileSystem`: the latter, by default, is an
        # "experimental" subclass that first asks a gRPC API for the bucket's layout (zonal or
        # hierarchical), which waits 60 s against an emulator and which plain buckets never need.
        from gcsfs.core import GCSFileSystem  # lazy: ~2 s, and a store on a local disk never needs it

        self.url = url.rstrip("/")
        # No listings cache: a reader must see files a collector wrote after its last listing.
        options: dict[str, Any] = {"use_listings_cache": False}
        if gcs_endpoint:
            options.update(endpoint_url=gcs_endpoint, token="anon")
        self._gcs = GCSFileSystem(**options)
        self._root = self.url.removeprefix("gs://")
        self._bucket_seen = False

    @property
    def bucket(self) -> str:
        return self._root.split("/", 1)[0]

    def _missing_bucket(self) -> RawStoreError | None:
        """The error to raise when the bucket itself does not exist (asked only after a failure, and
        once per store: a missing hour folder is common, a missing bucket is a configuration error)."""
        if self._bucket_seen:
            return None
        try:
            exists = self._gcs.exists(self.bucket)
        except Exception:  # unreachable or forbidden: the caller's own error says more
            return None
        self._bucket_seen = exists
        return None if exists else RawStoreError(f"bucket {self.bucket} does not exist")

    def write_bytes(self, relative: str, data: bytes) -> None:
        try:
            self._gcs.pipe_file(f"{self._root}/{relative}", data)
        except Exception as exc:  # gcsfs/google errors are not all OSError; the caller answers 503
            missing = self._missing_bucket()
            if missing is not None:
                raise missing from exc
            raise RawStoreError(f"could not store {relative}: {type(exc).__name__}") from exc

    def read_bytes(self, relative: str) -> bytes:
        return self._gcs.cat_file(f"{self._root}/{relative}")

    def list_names(self, prefix: str) -> list[str]:
        try:
            entries = self._gcs.ls(f"{self._root}/{prefix}", detail=True)
        except FileNotFoundError as exc:
            missing = self._missing_bucket()
            if missing is not None:
                raise missing from exc
            return []
        names = [e["name"].rsplit("/", 1)[-1] for e in entries if e.get("type") == "file"]
        return [name for name in names if not name.startswith(".")]

    def delete(self, relative: str) -> None:
        self._gcs.rm_file(f"{self._root}/{relative}")

    def url_for(self, relative: str) -> str:
        return f"gs://{self._root}/{relative}"

    def list_folders(self, prefix: str) -> list[str]:
        try:
            entries = self._gcs.ls(f"{self._root}/{prefix}", detail=True)
        except FileNotFoundError:
            return []
        return [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"]

    def delete_hour(self, route: str, hour: datetime) -> int:
        prefix = hour_path(route, hour)
        names = self.list_names(prefix)
        if names:
            self._gcs.rm([f"{self._root}/{prefix}/{name}" for name in names])
        return len(names)


def raw_store_at(url: str, *, gcs_endpoint: str | None = None) -> RawStore:
    """The store at `url`: gs://bucket[/prefix] or a local directory."""
    if url.startswith("gs://"):
        return GcsRawStore(url, gcs_endpoint=gcs_endpoint)
    return LocalRawStore(url)


def open_raw_store(settings: Settings) -> RawStore:
    """The store RAW_STORE_URL names."""
    return raw_store_at(settings.RAW_STORE_URL, gcs_endpoint=settings.STORAGE_EMULATOR_HOST)
