"""No 5xx for anything a client sends: every decoder failure is a 4xx with its code, kept under
rejected/ (without personal data) and logged with its code and size only."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deactivation.sdk_client import encode_form
from deactivation.settings import Settings
from ingest_app import create_app
from ingest_app.collect import KEPT_BODY_CHARS
from ingest_app.fast_path import SdkFront

from .conftest import call_asgi, stored_files

HASH = "a4a8da5b-b419-4656-98e9-4a42e9044891"
FORM = "application/x-www-form-urlencoded"
PERSONAL = ["jane.doe@example.com", "Jane", "Doe", "203.0.113.7", "2001:db8::1", "198.51.100.23"]


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    """One app for many requests (rate limits off: Hypothesis sends hundreds from one address),
    its store on tmpfs when there is one (each kept request is two fsyncs), every kept rejection
    recorded as (code, path)."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("hostile")
    settings = Settings(
        RAW_STORE_URL=str(root / "raw"), INGEST_RATE_PER_IP=0, INGEST_RATE_PER_PROJECT=0, _env_file=None
    )
    app = create_app(settings)
    store = app.extensions["ingest"].store
    write_rejected = store.write_rejected
    kept: list[tuple[str, str]] = []

    def recording_write_rejected(record, *, at):
        relative = write_rejected(record, at=at)
        kept.append((record["code"], relative))
        return relative

    store.write_rejected = recording_write_rejected
    yield app, root / "raw", kept
    app.extensions["ingest"].writer.close()
    shutil.rmtree(root, ignore_errors=True)


def post_and_check(hostile_app, body: bytes, content_type: str) -> int:
    """Post one body; check the answer is never 5xx and every 400 is kept, on disk, with its code."""
    app, raw_root, kept = hostile_app
    kept_before = len(kept)
    response = app.test_client().post("/deactivate", data=body, headers={"Content-Type": content_type})
    assert response.status_code < 500, response.get_data()[:200]
    assert response.status_code in (202, 400, 413), response.json
    if response.status_code == 202:
        assert set(response.json) == {"event_id"} and len(kept) == kept_before
    else:
        assert set(response.json) == {"code", "message", "details"}
    if response.status_code == 400:
        [(code, relative)] = kept[kept_before:]
        assert code == response.json["code"]
        assert json.loads((raw_root / relative).read_bytes())["code"] == code
    return response.status_code


# --- Known cases that used to escape as 500 ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a[²]",  # str.isdigit() accepts it, int() refuses it
        "a[" + "1" * 5000 + "]",  # more digits than int() converts
        "a[٣]",  # an Arabic-Indic digit
        "a[" + "9" * 40 + "]",  # beyond int64: a string key in PHP
    ],
)
def test_odd_bracket_indexes_are_string_keys_not_500(hostile_app, name):
    body = encode_form({"hash": HASH}).encode() + b"&" + encode_form({name: "x"}).encode() + b"&a[]=y"
    assert post_and_check(hostile_app, body, FORM) == 202


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (
            b'{"hash":"' + HASH.encode() + b'","x":' + b"[" * 33 + b"]" * 33 + b"}",
            "application/json",
            "json_too_deep",
        ),
        (b"[" * 2000 + b"]" * 2000, "application/json", "json_too_deep"),
        (f"hash={HASH}&a".encode() + b"[x]" * 40 + b"=1", FORM, "form_too_deep"),
    ],
)
def test_too_deep_bodies_get_a_clear_400(hostile_app, body, content_type, code):
    assert post_and_check(hostile_app, body, content_type) == 400
    assert hostile_app[2][-1][0] == code


def test_a_body_as_deep_as_the_limit_is_accepted(hostile_app):
    body = b'{"hash":"' + HASH.encode() + b'","x":' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels in all
    assert post_and_check(hostile_app, body, "application/json") == 202


# --- Property: whatever the body, never a 5xx ----------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
_ODD_TEXT = _TEXT | st.sampled_from(
    ["²", "٣", "1" * 5000, "9" * 30, "-1", "", "[", "]", "][", "%", "%zz", "\x00", "a[b", "\u202e", "🙂"]
)
_NAMES = st.one_of(
    _ODD_TEXT,
    st.builds(
        lambda base, keys: base + "".join(f"[{k}]" for k in keys), _ODD_TEXT, st.lists(_ODD_TEXT, max_size=40)
    ),
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _ODD_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_ODD_TEXT, children, max_size=4),
    max_leaves=30,
)


def _form_body(draw_pairs: list[tuple[str, str]], with_hash: bool) -> bytes:
    pairs = [("hash", HASH)] if with_hash else []
    return "&".join(
        encode_form({name: value}) if name else f"={value}" for name, value in pairs + draw_pairs
    ).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(_NAMES, _ODD_TEXT), max_size=12),
    with_hash=st.booleans(),
    raw_tail=st.binary(max_size=20),
)
def test_any_form_body_is_never_a_5xx(hostile_app, pairs, with_hash, raw_tail):
    body = _form_body(pairs, with_hash) + raw_tail
    if body:
        post_and_check(hostile_app, body, FORM)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.dictionaries(_ODD_TEXT, _JSON_VALUES, max_size=6),
    with_hash=st.booleans(),
    depth=st.integers(min_value=0, max_value=1100),
    mangle=st.sampled_from(["none", "truncate", "latin1", "array"]),
)
def test_any_json_body_is_never_a_5xx(hostile_app, value, with_hash, depth, mangle):
    if with_hash:
        value = {**value, "hash": HASH}
    body = json.dumps(value).encode()
    if depth:
        body = body[:-1] + (b"," if value else b"") + b'"deep":' + b"[" * depth + b"]" * depth + b"}"
    if mangle == "truncate":
        body = body[: len(body) // 2]
    elif mangle == "latin1":
        body = body + b"\xe9"
    elif mangle == "array":
        body = b"[" + body + b"]"
    if body:
        post_and_check(hostile_app, body, "application/json")


# --- Rejected copies keep no personal data -------------------------------------------------------


def personal_body() -> dict:
    return {
        "hash": "not-a-uuid",  # refused after decoding: the body is kept, redacted
        "admin_email": "jane.doe@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "ip_address": "203.0.113.7",
        "reason_info": "mail jane.doe@example.com from 198.51.100.23 or 2001:db8::1",
        "users": {"first_name": "Jane", "last_name": "Doe", "note": "write to <jane.doe@example.com>"},
        "extra": {"jane.doe@example.com": "203.0.113.7"},
    }


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (json.dumps(personal_body()).encode(), "application/json", "invalid_hash"),
        (encode_form(personal_body()).encode(), FORM, "invalid_hash"),
        (json.dumps(personal_body()).encode()[:-5], "application/json", "invalid_json"),  # does not parse
        (encode_form(personal_body()).encode() + b"&broken", FORM, "invalid_form"),  # does not parse
        (encode_form(personal_body()).encode() + b"&x=%FF", FORM, "invalid_utf8"),
    ],
    ids=["json", "form", "torn-json", "malformed-form", "invalid-utf8"],
)
def test_rejected_copies_keep_no_personal_data(tmp_path, caplog, body, content_type, code):
    app = create_app(Settings(RAW_STORE_URL=str(tmp_path / "raw"), _env_file=None))
    headers = {
        "Content-Type": content_type,
        "User-Agent": "WordPress/6.5; https://jane.example.com",
        "X-Forwarded-For": "203.0.113.7",
    }
    with caplog.at_level("DEBUG"):
        response = app.test_client().post(
            "/deactivate", data=body, headers=headers, environ_base={"REMOTE_ADDR": "198.51.100.23"}
        )
    app.extensions["ingest"].writer.close()
    assert response.status_code == 400 and response.json["code"] == code

    [kept] = stored_files(tmp_path / "raw", "rejected")
    text = kept.read_text()
    record = json.loads(text)
    assert record["code"] == code and record["body_bytes"] == len(body)
    assert "remote_addr" not in record
    for personal in [*PERSONAL, "jane.example.com"]:
        assert personal not in text, personal
        assert personal not in caplog.text, personal
    # Still diagnosable: the shape of what was sent survives.
    kept_content = json.dumps(record.get("body")) if "body" in record else record["body_text"]
    assert "reason_info" in kept_content and "admin_email" in kept_content


def test_a_large_rejected_body_is_kept_truncated(hostile_app):
    """At most KEPT_BODY_CHARS of a rejected body are kept, and runs no address is that long are
    shortened first: a flood of large bad bodies neither fills the disk nor stalls redaction."""
    body = b"hash=not-a-uuid&reason_info=" + b"a" * 250_000
    assert post_and_check(hostile_app, body, FORM) == 400
    _, raw_root, kept = hostile_app
    record = json.loads((raw_root / kept[-1][1]).read_bytes())
    assert record["body_bytes"] == len(body) and record["body_truncated"] is True
    assert "body" not in record
    assert record["body_text"].startswith("hash=not-a-uuid&reason_info=<")
    assert len(record["body_text"]) < KEPT_BODY_CHARS


@pytest.fixture(scope="module")
def front_and_flask(tmp_path_factory):
    """Two apps on tmpfs (when there is one): one driven through the async front, one through Flask."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("both")
    apps = [
        create_app(
            Settings(
                RAW_STORE_URL=str(root / name),
                INGEST_RATE_PER_IP=0,
                INGEST_RATE_PER_PROJECT=0,
                _env_file=None,
            )
        )
        for name in ("front", "flask")
    ]
    yield SdkFront(apps[0]), apps[1]
    for app in apps:
        app.extensions["ingest"].writer.close()
    shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(_NAMES, _ODD_TEXT), max_size=8),
    value=st.dictionaries(_ODD_TEXT, _JSON_VALUES, max_size=4),
    as_json=st.booleans(),
    with_hash=st.booleans(),
    depth=st.sampled_from([0, 31, 40, 300, 1100]),
)
def test_the_front_answers_any_body_as_flask_does(front_and_flask, pairs, value, as_json, with_hash, depth):
    front, flask_app = front_and_flask
    if as_json:
        body = json.dumps({**value, "hash": HASH} if with_hash else value).encode()
        if depth:
            body = body[:-1] + (b"," if len(body) > 2 else b"") + b'"d":' + b"[" * depth + b"]" * depth + b"}"
        content_type = "application/json"
    else:
        body, content_type = _form_body(pairs, with_hash), FORM
    headers = {"Content-Type": content_type}
    status, _, payload = call_asgi(front, "POST", "/deactivate", body, headers)
    response = flask_app.test_client().post("/deactivate", data=body, headers=headers)
    assert status < 500
    assert (status, json.loads(payload).get("code")) == (response.status_code, response.json.get("code"))
