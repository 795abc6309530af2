"""Ships this project to Dataflow workers: `--setup_file ./setup.py` (see beam/README.md).

Dataflow builds an sdist from this file and installs it on every worker, next to the Beam SDK
of the worker image. Project metadata lives in pyproject.toml; this file adds the runtime packages
the pipeline's workers import beyond apache-beam itself, pinned as in requirements.txt.
"""

import setuptools

WORKER_REQUIREMENTS = [
    "gcsfs==2026.10.1",
    "orjson==3.13.0",
    "pyarrow==25.0.1",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "pymongo==4.20.1",
    "uuid-utils==1.2.0",
]

setuptools.setup(install_requires=WORKER_REQUIREMENTS)
