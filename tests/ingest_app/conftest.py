"""Collector test helpers: settings without MongoDB, and the app built on them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deactivation.settings import Settings
from ingest_app import create_app


def stored_files(root: Path, prefix: str) -> list[Path]:
    """Complete files under RAW_STORE_URL/<prefix> (readers skip dot-names)."""
    base = root / prefix
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def ingest_settings(tmp_path: Path) -> Settings:
    return Settings(RAW_STORE_URL=str(tmp_path / "raw"), DATA_DIR=tmp_path / "data", _env_file=None)


@pytest.fixture
def app(ingest_settings: Settings):
    app = create_app(ingest_settings)
    yield app
    app.extensions["ingest"].writer.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def raw_root(ingest_settings: Settings) -> Path:
    return Path(ingest_settings.RAW_STORE_URL)


def call_asgi(
    asgi_app,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> tuple[int, dict[str, str], bytes]:
    """One request through an ASGI app in-process: (status, headers, body), as a server would
    deliver it (headers lower-cased, the body in one message with its Content-Length)."""
    header_list = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if body and not any(name == b"content-length" for name, _ in header_list):
        header_list.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": header_list,
        "client": client,
        "server": ("localhost", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(asgi_app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (
        start["status"],
        {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in start["headers"]},
        answer,
    )
