"""Dashboard API keys: hashed at rest, shown once, scoped to a project, revocable; and the CLI."""

from __future__ import annotations

import pytest

from deact.cli import main as deact
from deactivation.api_keys import API_KEYS, ApiKeyError, create_key, list_keys, revoke_key, verify_key
from deactivation.generator import DEMO_PROJECTS
from deactivation.projects import upsert_project

PROJECT = DEMO_PROJECTS[0]


@pytest.fixture
def registered(mongo_db):
    upsert_project(mongo_db, PROJECT)
    return mongo_db


def test_a_key_is_stored_only_as_a_keyed_hash_and_verifies(registered, settings):
    key, text = create_key(registered, settings, project_hash=PROJECT.hash, scope="personal", name="ci")
    stored = registered[API_KEYS].find_one({"_id": key.key_id})
    secret = text.split("_", 2)[2]
    assert secret not in str(stored) and text not in str(stored)
    assert len(stored["secret_hash"]) == 64
    verified = verify_key(registered, settings, text)
    assert verified is not None and verified.key_id == key.key_id and verified.sees_personal_data
    assert verified.covers(PROJECT.hash) and not verified.covers(DEMO_PROJECTS[1].hash)


def test_the_hash_depends_on_the_secret_key(registered, settings):
    _, text = create_key(registered, settings, project_hash=PROJECT.hash)
    other = settings.model_copy(update={"SECRET_KEY": "another secret"})
    assert verify_key(registered, other, text) is None


@pytest.mark.parametrize(
    "presented", ["", "dk_", "dk_zzzzzzzzzzzz_" + "A" * 43, "Bearer x", "dk_" + "a" * 500]
)
def test_malformed_keys_verify_as_nobody(registered, settings, presented):
    assert verify_key(registered, settings, presented) is None


def test_a_wrong_secret_or_a_revoked_key_verifies_as_nobody(registered, settings):
    key, text = create_key(registered, settings, project_hash=PROJECT.hash)
    assert verify_key(registered, settings, text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    revoked = revoke_key(registered, key.key_id)
    assert revoked.revoked_at is not None
    assert verify_key(registered, settings, text) is None
    assert revoke_key(registered, key.key_id).revoked_at == revoked.revoked_at  # idempotent


def test_keys_for_unknown_projects_scopes_or_ids_are_refused(registered, settings):
    with pytest.raises(ApiKeyError, match="no project"):
        create_key(registered, settings, project_hash=DEMO_PROJECTS[2].hash)
    with pytest.raises(ApiKeyError, match="scope"):
        create_key(registered, settings, project_hash=PROJECT.hash, scope="admin")
    with pytest.raises(ApiKeyError, match="no key"):
        revoke_key(registered, "000000000000")
    assert list_keys(registered) == []


def test_an_operator_key_covers_every_project(registered, settings):
    key, _ = create_key(registered, settings, project_hash=None)
    assert key.is_operator and key.covers(DEMO_PROJECTS[2].hash)


def test_the_cli_prints_the_key_alone_last_lists_without_secrets_and_revokes(
    registered, settings, capsys, monkeypatch
):
    monkeypatch.setattr("deactivation.settings.get_settings", lambda: settings)
    monkeypatch.setattr("deact.commands.projects.get_settings", lambda: settings)
    assert (
        deact(["projects", "key", "create", "--project", PROJECT.hash, "--name", "ci", "--scope", "personal"])
        == 0
    )
    text = capsys.readouterr().out.splitlines()[-1]
    assert verify_key(registered, settings, text) is not None
    assert deact(["projects", "key", "create", "--all-projects"]) == 0
    operator_text = capsys.readouterr().out.splitlines()[-1]
    assert verify_key(registered, settings, operator_text).is_operator

    assert deact(["projects", "key", "list", "--project", PROJECT.hash]) == 0
    listing = capsys.readouterr().out
    key_id = text.split("_")[1]
    assert key_id in listing and text.split("_", 2)[2] not in listing and "personal" in listing
    assert operator_text.split("_")[1] not in listing  # --project lists that project's keys only

    assert deact(["projects", "key", "revoke", key_id]) == 0
    assert "revoked" in capsys.readouterr().out
    assert verify_key(registered, settings, text) is None
    assert deact(["projects", "key", "revoke", "000000000000"]) == 2
    assert "no key" in capsys.readouterr().err
    assert deact(["projects", "key", "create", "--project", DEMO_PROJECTS[1].hash]) == 2
