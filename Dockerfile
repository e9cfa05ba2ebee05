# dropengine's commands in a slim image: the server and the bus extras, run as a non-root user.
#   docker build -t dropengine .
#   docker run --rm -p 8080:8080 dropengine serve --source replay:/app/fixtures/demo_nba_frames.ndjson --host 0.0.0.0
# deploy/docker-compose.yml runs a three-node NATS cluster, an ingest, two detectors and two frontends on it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dropengine ./dropengine
COPY fixtures/demo_nba_frames.ndjson ./fixtures/demo_nba_frames.ndjson
RUN pip install '.[server,bus]' && useradd --create-home --uid 10001 dropengine
USER dropengine
EXPOSE 8080
ENTRYPOINT ["dropengine"]
CMD ["--help"]
