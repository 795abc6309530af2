"""The JSON API, /api/v1: read-only, keyed by `Authorization: Bearer KEY`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from dashboard_app import service
from dashboard_app.auth import project_for, projects_of, require_key
from dashboard_app.openapi import openapi_document

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@api.get("/docs")
def docs() -> str:
    return render_template("api_docs.html", document=openapi_document())


@api.get("/projects")
def list_projects() -> Response:
    key = require_key()
    return jsonify({"items": [{"hash": p.hash, "name": p.name, "kind": p.kind} for p in projects_of(key)]})


@api.get("/projects/<project_hash>/deactivations")
def deactivations(project_hash: str) -> Response:
    key = require_key()
    page, _ = service.deactivations_page(project_for(key, project_hash), key, request.args)
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


@api.get("/projects/<project_hash>/deactivations.csv")
def deactivations_csv(project_hash: str) -> Response:
    key = require_key()
    return service.csv_download(project_for(key, project_hash), key, request.args)


@api.get("/projects/<project_hash>/sites/<path:site_url>")
def site(project_hash: str, site_url: str) -> Response:
    key = require_key()
    return jsonify(service.site(project_for(key, project_hash), key, site_url))


@api.get("/projects/<project_hash>/summary")
def summary(project_hash: str) -> Response:
    key = require_key()
    return jsonify(service.summary(project_for(key, project_hash), request.args))


@api.get("/projects/<project_hash>/charts")
def charts(project_hash: str) -> Response:
    key = require_key()
    return jsonify({"items": service.charts(project_for(key, project_hash), request.args)})


@api.get("/projects/<project_hash>/charts/<chart_id>")
def chart(project_hash: str, chart_id: str) -> Response:
    key = require_key()
    return jsonify(service.charts(project_for(key, project_hash), request.args, chart_id)[0])
