# One image, three roles on Google Cloud (README, "Production on Google Cloud"):
#   1. The collector on Cloud Run: the default command `deact serve` listens on $PORT (Cloud Run
#      sets it; 8080 otherwise), on all interfaces, behind a production WSGI server.
#   2. The flow-run image of the `deactivation` Cloud Run work pool (prefect-gcp): every Prefect
#      flow run is a Cloud Run job of this image; the worker overrides the command with
#      `prefect flow-run execute`, which loads prefect.yaml's entrypoints from /app.
#      (`prefect deploy --all` is run inside this image too, so deployments record /app.)
#   3. The Beam launcher: with BEAM_RUNNER=DataflowRunner the pipeline flow submits its job to
#      Dataflow from here, shipping beam/ and deactivation/ to the workers through /app/setup.py.
# Configuration is environment only (deactivation/settings.py); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_LOGGING_EXTRA_LOGGERS=beam,reports,deactivation,notifications,privacy

WORKDIR /app

# Dependencies first (exact pins, constrained by the lock), so code changes rebuild one layer.
COPY requirements.txt requirements.lock ./
RUN pip install "uv==0.13.9" \
 && uv pip install --system --prerelease=if-necessary-or-explicit -r requirements.txt -c requirements.lock

COPY . .
RUN uv pip install --system --no-deps . \
 && useradd --create-home --uid 10001 app \
 && mkdir -p /app/data && chown app /app/data
USER app

EXPOSE 8080
CMD ["deact", "serve"]
