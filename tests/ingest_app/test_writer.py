"""Group commit: many concurrent envelopes share few fsynced files, acknowledged only after them."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from deactivation.envelope import make_envelope
from deactivation.raw_store import LocalRawStore, RawStoreError, serialise_envelope
from ingest_app.writer import GroupCommitWriter

from .conftest import stored_files


class SlowStore(LocalRawStore):
    """A local store whose commits take a while, so that concurrent writers pile up."""

    def __init__(self, url: str, gate: threading.Event) -> None:
        super().__init__(url)
        self.gate = gate
        self.commits: list[int] = []

    def write_lines(self, route, envelopes):
        self.gate.wait(5)
        self.commits.append(len(envelopes))
        return super().write_lines(route, envelopes)


def envelope(number: int):
    return serialise_envelope(
        make_envelope(
            route="deactivate", body={"hash": "h", "n": str(number)}, content_type="application/json"
        )
    )


def write_concurrently(writer: GroupCommitWriter, count: int) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * count

    def write(index: int) -> None:
        try:
            writer.write("deactivate", envelope(index))
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return outcomes, threads


def test_concurrent_writes_share_commits_and_respect_batch_max(tmp_path: Path):
    gate = threading.Event()
    store = SlowStore(str(tmp_path / "raw"), gate)
    writer = GroupCommitWriter(store, batch_max=8)
    outcomes, threads = write_concurrently(writer, 40)
    gate.set()
    for thread in threads:
        thread.join()
    writer.close()

    assert outcomes == [None] * 40
    assert sum(store.commits) == 40 and max(store.commits) <= 8 and len(store.commits) < 40
    lines = [
        line
        for path in stored_files(tmp_path / "raw", "deactivate")
        for line in path.read_bytes().splitlines()
    ]
    assert sorted(int(orjson.loads(line)["body"]["n"]) for line in lines) == list(range(40))
    assert any(p.suffix == ".ndjson" for p in stored_files(tmp_path / "raw", "deactivate"))


def test_a_failed_commit_fails_every_request_in_it(tmp_path: Path):
    blocked = tmp_path / "raw"
    blocked.write_text("")
    writer = GroupCommitWriter(LocalRawStore(str(blocked)), batch_max=256)
    outcomes, threads = write_concurrently(writer, 10)
    for thread in threads:
        thread.join()
    writer.close()
    assert all(isinstance(outcome, RawStoreError) for outcome in outcomes)


def test_a_closed_writer_refuses_new_envelopes(tmp_path: Path):
    writer = GroupCommitWriter(LocalRawStore(str(tmp_path / "raw")), batch_max=4)
    writer.write("deactivate", envelope(1))
    writer.close()
    with pytest.raises(RawStoreError):
        writer.write("deactivate", envelope(2))
    assert len(stored_files(tmp_path / "raw", "deactivate")) == 1
