"""`deact projects add|list|show|update|remove`, projects by name or hash, and the library resolver."""

from __future__ import annotations

import json

import pytest

from deact.cli import main
from deactivation.projects import Project, ProjectError, list_projects, resolve_project, upsert_project
from deactivation.settings import Settings

FORMS_HASH = "a4a8da5b-b419-4656-98e9-4a42e9044891"


@pytest.fixture
def cli_settings(settings, monkeypatch):
    """The in-process CLI reads get_settings(): point it at this test's settings."""
    monkeypatch.setattr("deact.commands.projects.get_settings", lambda: settings)
    return settings


def test_projects_add_and_list(cli_settings, mongo_db, capsys):
    code = main(
        [
            "projects",
            "add",
            "--hash",
            "A4A8DA5B-B419-4656-98E9-4A42E9044891",
            "--name",
            "Forms",
            "--reason",
            "too-expensive=Too expensive",
            "--reason",
            "no-time=No time",
            "--custom-field",
            "total_forms",
            "pro",
            "--mail",
            "mailchimp:deactivated",
            "--json",
        ]
    )
    assert code == 0
    added = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert added["hash"] == "a4a8da5b-b419-4656-98e9-4a42e9044891"
    assert added["custom_reasons"] == {"too-expensive": "Too expensive", "no-time": "No time"}
    assert added["custom_fields"] == ["pro", "total_forms"]
    assert added["mail_integrations"] == [{"provider": "mailchimp", "list_id": "deactivated"}]
    assert (
        main(
            [
                "projects",
                "add",
                "--hash",
                "b1b2c3d4-0000-4000-8000-000000000001",
                "--name",
                "T",
                "--kind",
                "theme",
            ]
        )
        == 0
    )
    assert "registered theme 'T' (b1b2c3d4-0000-4000-8000-000000000001)" in capsys.readouterr().out

    assert main(["projects", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(p["name"], p["kind"]) for p in listed["projects"]] == [("Forms", "plugin"), ("T", "theme")]


def test_projects_list_prints_its_table_only(cli_settings, mongo_db, capsys):
    upsert_project(
        mongo_db, Project(hash=FORMS_HASH, name="Forms", custom_reasons={"too-pricey": "Too pricey"})
    )
    assert main(["projects", "list"]) == 0
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    assert line.startswith(f"{FORMS_HASH}  plugin  Forms  reasons=too-pricey  fields=-  mail=-")
    assert "{" not in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hash", "not-a-uuid", "--name", "X"], "project hash must be a UUID, got 'not-a-uuid'"),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--reason", "nolabel"],
            "--reason expects ID=LABEL, got 'nolabel'",
        ),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--reason", "other=Mine"],
            "custom reason id 'other' is a built-in reason",
        ),
        (
            ["--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "X", "--mail", "pigeon:l1"],
            "unknown mail provider 'pigeon'",
        ),
    ],
)
def test_projects_add_rejects_bad_input_with_a_clear_error(
    cli_settings, mongo_db, capsys, arguments, message
):
    assert main(["projects", "add", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Value error" not in error and "Traceback" not in error


def test_projects_add_rejects_a_duplicate(cli_settings, mongo_db, capsys):
    arguments = ["projects", "add", "--hash", "a4a8da5b-b419-4656-98e9-4a42e9044891", "--name", "Forms"]
    assert main(arguments) == 0
    assert main(arguments) == 2
    assert (
        "a project with hash a4a8da5b-b419-4656-98e9-4a42e9044891 already exists" in capsys.readouterr().err
    )


def test_the_mail_providers_are_listed_in_the_help(capsys):
    from deactivation.projects import SUPPORTED_PROVIDERS

    with pytest.raises(SystemExit):
        main(["projects", "add", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"Providers: {', '.join(SUPPORTED_PROVIDERS)}." in help_text


def test_update_by_name_changes_only_what_is_given(cli_settings, mongo_db, capsys):
    upsert_project(mongo_db, Project(hash=FORMS_HASH, name="Forms", custom_fields=["pro"]))
    assert main(["projects", "update", "forms", "--name", "Forms Pro", "--reason", "no-time=No time"]) == 0
    assert "updated name, custom_reasons" in capsys.readouterr().out
    (stored,) = list_projects(mongo_db)
    assert (stored.name, stored.custom_reasons, stored.custom_fields) == (
        "Forms Pro",
        {"no-time": "No time"},
        ["pro"],
    )
    assert main(["projects", "update", FORMS_HASH, "--reason"]) == 0  # no values: remove them all
    assert list_projects(mongo_db)[0].custom_reasons == {}
    assert main(["projects", "update", "Forms Pro"]) == 2
    assert "nothing to change" in capsys.readouterr().err


def test_remove_refuses_while_history_exists_and_says_what_it_keeps(cli_settings, mongo_db, capsys):
    from deactivation.mongo import SITES

    upsert_project(mongo_db, Project(hash=FORMS_HASH, name="Forms"))
    mongo_db[SITES].insert_one({"_id": f"{FORMS_HASH}|https://a.example", "project_hash": FORMS_HASH})
    assert main(["projects", "remove", "Forms"]) == 2
    refusal = capsys.readouterr().err
    assert "has history: 1 sites in MongoDB" in refusal and "--force" in refusal
    assert [p.hash for p in list_projects(mongo_db)] == [FORMS_HASH]

    assert main(["projects", "remove", "Forms", "--force"]) == 0
    said = capsys.readouterr().out
    assert "removed plugin 'Forms'" in said and "kept: 1 sites in MongoDB" in said
    assert list_projects(mongo_db) == []
    assert mongo_db[SITES].count_documents({}) == 1, "the history stays"


def test_remove_without_history_needs_no_force(cli_settings, mongo_db, capsys):
    upsert_project(mongo_db, Project(hash=FORMS_HASH, name="Forms"))
    assert main(["projects", "remove", FORMS_HASH]) == 0
    assert "kept: no history" in capsys.readouterr().out
    assert list_projects(mongo_db) == []


def test_resolve_project_by_name_or_hash_with_clear_errors(mongo_db):
    upsert_project(mongo_db, Project(hash=FORMS_HASH, name="Forms"))
    upsert_project(mongo_db, Project(hash="b1b2c3d4-0000-4000-8000-000000000001", name="Twin"))
    upsert_project(mongo_db, Project(hash="b1b2c3d4-0000-4000-8000-000000000002", name="twin"))
    assert resolve_project(mongo_db, " FORMS ").hash == FORMS_HASH
    assert resolve_project(mongo_db, FORMS_HASH.upper()).name == "Forms"
    with pytest.raises(ProjectError, match="no project 'Gone'; known: Forms"):
        resolve_project(mongo_db, "Gone")
    with pytest.raises(ProjectError, match="2 projects are named 'TWIN'; give one of their hashes"):
        resolve_project(mongo_db, "TWIN")
    with pytest.raises(ProjectError, match="no project '0d0e0a0d-0000-4000-8000-00000000beef'"):
        resolve_project(mongo_db, "0d0e0a0d-0000-4000-8000-00000000beef")


def test_an_empty_registry_says_how_to_add_a_project(mongo_db):
    with pytest.raises(ProjectError, match=r"none is registered yet \(`deact projects add`\)"):
        resolve_project(mongo_db, "Forms")


def test_show_accepts_a_name(cli_settings: Settings, mongo_db, capsys):
    upsert_project(mongo_db, Project(hash=FORMS_HASH, name="Forms"))
    assert main(["projects", "show", "forms", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hash"] == FORMS_HASH
