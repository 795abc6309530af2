"""A client that sends what the Appsero SDK sends: used by the demo, the benchmark and tests.

`encode_form` is PHP's `http_build_query` as WordPress applies it to the SDK's array: nested
keys in brackets (`server[php_version]=8.2.36`), booleans as 1/0, None and empty arrays dropped,
every value a string, RFC 1738 escaping (spaces as '+', brackets as %5B/%5D). Requests go one per
connection, like WordPress's HTTP API does.
"""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus, urlsplit

import orjson

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TIMEOUT_S = 30.0  # what the SDK waits before giving up

#: Status reported for a request that got no HTTP answer at all (refused, reset, timed out).
NO_ANSWER = 0


def encode_form(body: dict[str, Any]) -> str:
    """The form body WordPress sends for the SDK's PHP array `body`."""
    return "&".join(f"{_escape(key)}={_escape(value)}" for key, value in _flatten(body, ""))


def _flatten(value: dict[str, Any] | list[Any], prefix: str) -> Iterator[tuple[str, str]]:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if child is None:
            continue
        if isinstance(child, dict | list):
            yield from _flatten(child, name)
        elif isinstance(child, bool):
            yield name, "1" if child else "0"
        else:
            yield name, str(child)


def _escape(text: str) -> str:
    # PHP's urlencode keeps only letters, digits and "-_." ('~' too is escaped, unlike Python).
    return quote_plus(text, safe="").replace("~", "%7E")


def site_user_agent(site_url: str) -> str:
    """The SDK's User-Agent: 'Appsero/' + md5 of the site's home URL + ';'."""
    return f"Appsero/{hashlib.md5(site_url.encode()).hexdigest()};"


def post(
    base_url: str, route: str, body: dict[str, Any], *, as_json: bool = False, user_agent: str | None = None
) -> int:
    """POST one SDK request to `base_url` + /route; the HTTP status, or NO_ANSWER."""
    target = urlsplit(base_url.rstrip("/") + "/" + route.lstrip("/"))
    payload = orjson.dumps(body) if as_json else encode_form(body).encode("ascii")
    headers = {
        "Content-Type": JSON if as_json else FORM,
        "Accept": "application/json",
        "User-Agent": user_agent or site_user_agent(str(body.get("url", ""))),
        "Connection": "close",
    }
    connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(target.netloc, timeout=TIMEOUT_S)
    try:
        connection.request("POST", target.path or "/", body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return NO_ANSWER
    finally:
        connection.close()


def post_deactivation(
    base_url: str, body: dict[str, Any], *, as_json: bool = False, user_agent: str | None = None
) -> int:
    """POST one deactivation like the SDK does; returns the HTTP status (NO_ANSWER if none)."""
    return post(base_url, "deactivate", body, as_json=as_json, user_agent=user_agent)


def post_many(
    base_url: str, bodies: Sequence[dict[str, Any]], concurrency: int = 8, *, as_json: bool = False
) -> list[int]:
    """POST every body to /deactivate from `concurrency` threads; statuses in the bodies' order."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda body: post_deactivation(base_url, body, as_json=as_json), bodies))
