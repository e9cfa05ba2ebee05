# syntax=docker/dockerfile:1
# dropengine's commands in a slim image: the server and the bus extras (starlette, uvicorn,
# prometheus-client, nats), run as a non-root user.
#   docker build -t dropengine .
#   docker run --rm -p 8080:8080 dropengine serve --source replay:/app/fixtures/demo_nba_frames.ndjson --speed 60
#   docker run --rm -p 8080:8080 -v "$PWD/serve.toml:/etc/dropengine/serve.toml:ro" \
#       -e DROPENGINE_SERVE_CONFIG=/etc/dropengine/serve.toml dropengine serve
# Settings: flags > DROPENGINE_SERVE_<OPTION> environment variables > --config FILE (TOML) > defaults;
# the image sets DROPENGINE_SERVE_HOST=0.0.0.0 and DROPENGINE_SERVE_PORT=8080 (a flag still wins).
# deploy/docker-compose.yml runs a three-node NATS cluster, an ingest, two detectors and two frontends on it.

# Build stage: wheels of dropengine and of everything its server and bus extras need, so neither the
# source tree nor pip's downloads become layers of the final image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY dropengine ./dropengine
RUN pip wheel --wheel-dir /wheels '.[server,bus]'

FROM python:3.11-slim
LABEL org.opencontainers.image.title="dropengine" \
      org.opencontainers.image.description="Price-drop, line-move and steam alerts from sports-betting odds streams: the /v1/odds-drop server (SSE), ingest and detect on NATS" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="docs/asyncapi.yaml (channels and frames), deploy/serve.example.toml (settings)"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DROPENGINE_SERVE_HOST=0.0.0.0 DROPENGINE_SERVE_PORT=8080
WORKDIR /app
# The build stage's wheels, mounted for this step only (BuildKit, Docker's default builder): the same
# extras installed from them alone, no index, nothing left behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels 'dropengine[server,bus]' \
    && useradd --create-home --uid 10001 dropengine
COPY LICENSE ./LICENSE
COPY fixtures/demo_nba_frames.ndjson ./fixtures/demo_nba_frames.ndjson
COPY deploy/serve.example.toml ./deploy/serve.example.toml
USER dropengine
EXPOSE 8080
# /healthz: 200 while serving (503 "degraded": the source stopped or the bus is unreachable). The
# standard library only (the slim image has no curl); a container running another command
# (ingest, detect) has no HTTP port: give it its own check or --no-healthcheck. The check asks the
# port of DROPENGINE_SERVE_PORT: change the port with -e DROPENGINE_SERVE_PORT=9000, not with
# `serve --port 9000` (a flag wins over the variable, and the check would ask 8080 for ever).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DROPENGINE_SERVE_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["dropengine"]
CMD ["--help"]
