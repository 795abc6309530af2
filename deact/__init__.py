"""The entry layer: the `deact` command line, the demo, the local stack and the notebook workbench.

It sits on top of everything: it may import the library (`deactivation/`) and every app
(`ingest_app/`, `beam/`, `reports/`, `flows/`, ...), and nothing imports it (checked by the
import-linter contracts in pyproject.toml).
"""
