# syntax=docker/dockerfile:1
# Pigeon in a container: a small, non-root image that serves on :8000 and keeps its data in
# /data. Build: docker build -t pigeon .   Run: see compose.yaml and docs/operating.md.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/pigeon
COPY requirements.lock ./
RUN /opt/pigeon/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY pigeon ./pigeon
RUN /opt/pigeon/bin/pip install --no-deps . \
    && find /opt/pigeon -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
# the PostgreSQL client tools serve `pigeon backup` and `pigeon restore`
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pigeon \
    && useradd --system --uid 10001 --gid pigeon --home-dir /data --shell /usr/sbin/nologin pigeon \
    && install -d -o pigeon -g pigeon -m 0700 /data
COPY --from=build /opt/pigeon /opt/pigeon
ENV PATH=/opt/pigeon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIGEON_DATA_DIR=/data \
    PIGEON_HOST=0.0.0.0 \
    PIGEON_PORT=8000 \
    PIGEON_LOG_FORMAT=json
USER pigeon
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["pigeon", "serve"]
