"""The OpenAPI document is valid, and the API survives fuzzing from its own document: no 5xx."""

from __future__ import annotations

import hypothesis
import schemathesis
from openapi_spec_validator import validate

from .conftest import PLUGIN, bearer


def test_the_openapi_document_validates_and_names_every_endpoint(app):
    document = app.test_client().get("/api/v1/openapi.json").json
    validate(document)
    documented = {f"/api/v1{path}" for path in document["paths"]}
    served = {
        str(rule).replace("<project_hash>", "{project_hash}").replace("<path:site_url>", "{site}")
        .replace("<chart_id>", "{chart_id}")
        for rule in app.url_map.iter_rules()
        if str(rule).startswith("/api/v1/projects")
    }  # fmt: skip
    assert documented == served


def test_fuzzing_the_api_from_its_own_document_finds_no_server_error(app, keys):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy(), real_project=hypothesis.strategies.booleans())
        @hypothesis.settings(
            max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck), database=None
        )
        def fuzz(case, real_project):
            # Fuzzed hashes are all unknown (404); half the cases use the real project, so filters,
            # periods, cursors and paging are reached with fuzzed values.
            if real_project and "project_hash" in (case.path_parameters or {}):
                case.path_parameters["project_hash"] = PLUGIN
            case.call_and_validate(
                headers=bearer(keys["operator"]), checks=[schemathesis.checks.not_a_server_error]
            )

        fuzz()
