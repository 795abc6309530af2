#!/usr/bin/env bash
# Builds .venv-bq, the separate Python 3.13 venv that runs the local BigQuery emulator
# (local-bigquery) for the BigQuery adapter's tests. `make .venv-bq` and the test fixture call it;
# it is idempotent and takes a few seconds once the wheels are in uv's cache.
#
# Offline, DuckDB cannot download the extensions local-bigquery needs (icu, ducklake, spatial).
# They come as pip wheels instead, but DuckDB only loads extensions from its extension directory
# (~/.duckdb/extensions/<version>/<platform>/). So each wheel's file is INSTALLed into
# .venv-bq/duckdb-home/.duckdb/extensions, and the emulator runs with HOME=.venv-bq/duckdb-home:
# the machine's own ~/.duckdb is never touched.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-bq"
uv="$root/.venv/bin/uv"
python=/root/.pyenv/versions/3.13.0/bin/python
[[ -x "$python" ]] || python=3.13 # any Python 3.13 uv can find

"$uv" venv -q --allow-existing --python "$python" "$venv"
"$uv" pip sync -q --python "$venv/bin/python" "$root/requirements-bq.lock"
mkdir -p "$venv/duckdb-home"
HOME="$venv/duckdb-home" "$venv/bin/python" - <<'PY'
import importlib
from pathlib import Path

import duckdb

with duckdb.connect() as connection:
    for name in ("icu", "ducklake", "spatial"):
        package = Path(importlib.import_module(f"duckdb_extension_{name}").__path__[0])
        (extension_file,) = package.glob("extensions/*/*.duckdb_extension")
        connection.execute(f"INSTALL '{extension_file}'")
    # The emulator sets TimeZone at connect time, which needs icu: prove it loads offline.
    duckdb.connect(config={"TimeZone": "UTC"}).close()
PY
touch "$venv/.installed"
