# metrics-ingest: one image for every role (migrate, api, worker); the command picks the role.
#   docker build -t metrics-ingest .
#   docker run --rm -e METRICS_INGEST_DATABASE_URL=... -e METRICS_INGEST_BROKER_URL=... metrics-ingest api
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY api_shim api_shim
COPY worker worker
COPY broker broker
COPY runtime runtime
COPY migrations migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    METRICS_INGEST_API_HOST=0.0.0.0 \
    METRICS_INGEST_API_PORT=8000 \
    METRICS_INGEST_LOG_FORMAT=json \
    METRICS_INGEST_DATA_DIR=/var/lib/metrics-ingest
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/metrics-ingest --create-home metrics
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER metrics
WORKDIR /var/lib/metrics-ingest
EXPOSE 8000
# Liveness of the API role (the default command). Compose overrides it per service: /readyz for the API,
# a Celery ping of its own node for a worker.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["metrics-ingest"]
CMD ["api"]
