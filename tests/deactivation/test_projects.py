"""The project registry: what a project may declare, and how it is stored in MongoDB."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deactivation.projects import (
    Project,
    ProjectError,
    add_project,
    list_projects,
    load_registry,
    normalise_hash,
    upsert_project,
)
from deactivation.reasons import BUILT_IN_REASONS, THEME_SWITCH

HASH = "6F1D2C3B-8A4E-4F5A-9B6C-1D2E3F4A5B6C"


def test_hash_is_normalised_and_must_be_a_uuid():
    assert normalise_hash(f"  {HASH} ") == HASH.lower()
    with pytest.raises(ValueError, match="must be a UUID"):
        normalise_hash("not-a-uuid")
    assert Project(hash=HASH, name="P").hash == HASH.lower()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("custom_reasons", {"Bad Id": "x"}, "lowercase"),
        ("custom_reasons", {"other": "mine"}, "built-in"),
        ("custom_reasons", {"mine": "  "}, "needs a label"),
        ("custom_fields", ["a b"], "custom field key"),
        ("contact_policy", "sometimes", "contact_policy"),
        ("kind", "library", "kind"),
        ("name", "", "at least 1 character"),
    ],
)
def test_invalid_definitions_are_refused(field, value, says):
    with pytest.raises(ValidationError, match=says):
        Project(**{"hash": HASH, "name": "P", field: value})


def test_reasons_are_built_in_plus_custom_and_contact_is_kept_by_default():
    project = Project(hash=HASH, name="P", custom_reasons={"too-expensive": "Too expensive"})
    assert set(project.reasons) == {*BUILT_IN_REASONS, THEME_SWITCH, "too-expensive"}
    assert project.reasons["too-expensive"] == "Too expensive"
    assert project.contact_policy == "keep"


def test_add_refuses_a_second_project_with_the_same_hash(mongo_db):
    add_project(mongo_db, Project(hash=HASH, name="First"))
    with pytest.raises(ProjectError, match="already exists"):
        add_project(mongo_db, Project(hash=HASH.lower(), name="Second"))
    assert [p.name for p in list_projects(mongo_db)] == ["First"]


def test_upsert_is_idempotent_and_the_registry_is_keyed_by_hash(mongo_db):
    project = Project(hash=HASH, name="P", kind="theme", contact_policy="drop")
    upsert_project(mongo_db, project)
    upsert_project(mongo_db, project)
    registry = load_registry(mongo_db)
    assert list(registry) == [HASH.lower()]
    assert registry[HASH.lower()].contact_policy == "drop"
    assert mongo_db.projects.count_documents({}) == 1
