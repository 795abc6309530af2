"""The suppression list keeps keyed hashes only, and unsubscribe tokens cannot be forged."""

from __future__ import annotations

import pytest

from deactivation.suppression import (
    MAX_TOKEN_CHARS,
    SUPPRESSIONS,
    UnsubscribeTokenError,
    address_hash,
    is_suppressed,
    read_unsubscribe_token,
    suppress,
    suppress_hash,
    unsubscribe_token,
)

PROJECT = "6f1d2c3b-8a4e-4f5a-9b6c-1d2e3f4a5b6c"
OTHER = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


def test_suppression_is_per_project_case_insensitive_and_stores_no_address(settings, mongo_db):
    suppress(mongo_db, settings, PROJECT, " Jane.Doe@Example.com ", "unsubscribed")
    suppress(mongo_db, settings, PROJECT, "jane.doe@example.com", "hard_bounce")  # idempotent

    assert is_suppressed(mongo_db, settings, PROJECT, "jane.doe@example.com")
    assert not is_suppressed(mongo_db, settings, OTHER, "jane.doe@example.com")
    assert not is_suppressed(mongo_db, settings, PROJECT, "john@example.com")
    documents = list(mongo_db[SUPPRESSIONS].find())
    assert len(documents) == 1 and documents[0]["reason"] == "unsubscribed"  # the first reason stays
    assert "example.com" not in repr(documents).lower()


def test_the_hash_depends_on_the_secret_key(settings):
    other = settings.model_copy(update={"SECRET_KEY": "another secret"})
    assert address_hash(settings, PROJECT, "a@b.c") != address_hash(other, PROJECT, "a@b.c")


def test_a_token_names_project_and_hash_and_round_trips(settings, mongo_db):
    token = unsubscribe_token(settings, PROJECT, "Jane@Example.com")
    assert "example" not in token.lower() and len(token) <= MAX_TOKEN_CHARS
    project_hash, hashed = read_unsubscribe_token(settings, token)
    assert project_hash == PROJECT
    suppress_hash(mongo_db, project_hash, hashed, "unsubscribed")
    assert is_suppressed(mongo_db, settings, PROJECT, "jane@example.com")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: t.replace(PROJECT, OTHER),  # another project, same signature
        lambda t: t.split(".", 1)[0],  # truncated
        lambda t: t + "." + t,  # too many parts
        lambda t: "x" * (MAX_TOKEN_CHARS + 1),  # oversized
        lambda t: "not-a-uuid." + "0" * 64 + ".sig",
        lambda t: f"{PROJECT}.{'Z' * 64}.sig",  # not a hex hash
    ],
)
def test_forged_or_broken_tokens_are_refused(settings, mangle):
    with pytest.raises(UnsubscribeTokenError):
        read_unsubscribe_token(settings, mangle(unsubscribe_token(settings, PROJECT, "a@b.example")))


def test_a_token_signed_with_another_key_is_refused(settings):
    other = settings.model_copy(update={"SECRET_KEY": "another secret"})
    with pytest.raises(UnsubscribeTokenError):
        read_unsubscribe_token(settings, unsubscribe_token(other, PROJECT, "a@b.example"))
