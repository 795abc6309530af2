"""GET /healthz (the process is up) and GET /readyz (an event can be written where the next one goes)."""

from __future__ import annotations

import logging

import orjson
from flask import Blueprint, Response

from deactivation.raw_store import RawStoreError
from ingest_app.errors import error_response
from ingest_app.state import ingest_state

log = logging.getLogger(__name__)

health = Blueprint("health", __name__)


def _json(payload: dict) -> Response:
    return Response(orjson.dumps(payload), status=200, mimetype="application/json")


@health.get("/healthz")
def healthz() -> Response:
    return _json({"status": "ok", "counts": ingest_state().counters.snapshot()})


@health.get("/readyz")
def readyz() -> Response:
    try:
        # A probe file in this hour's folder of the deactivate route: where the next event goes.
        ingest_state().store.check_writable("deactivate")
    except RawStoreError as exc:
        log.error("readiness probe failed: %s", type(exc.__cause__ or exc).__name__)
        return error_response(503, "store_unavailable", "the raw store is not writable")
    return _json({"status": "ready"})
