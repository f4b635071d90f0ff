# media-monitor: the alert daemon in a container.
#
#   docker build -t media-monitor .        (or: podman build --format docker ...)
#   docker run -v monitor-data:/data -p 8080:8080 media-monitor
#
# State (SQLite database, the file sink's alerts.jsonl) lives on the /data volume;
# configuration is read from /config (the shipped config/ is the default; mount your
# own over it). The working directory is /, so the relative paths the shipped
# configuration uses, data/... and config/..., are /data/... and /config/....
# See "Running in a container" in README.md.

# --- builder: the package and its dependencies in a virtualenv ---------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A virtualenv, not the system site-packages: it copies whole into the runtime stage
# and keeps pip, setuptools and wheel out of it.
RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# Versions come from pyproject.toml's ranges; `.` is this source tree, not an index name.
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime -------------------------------------------------------------------------
FROM python:3.11-slim

ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=unknown

LABEL org.opencontainers.image.title="media-monitor" \
      org.opencontainers.image.description="Media-monitoring alert daemon: polls news feeds, finds escalation signals, alerts analysts." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# A fixed uid/gid so a host directory mounted at /data can be chowned to it in advance.
RUN groupadd --gid 10001 monitor \
    && useradd --uid 10001 --gid monitor --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin monitor \
    && mkdir -p /data \
    && chown monitor:monitor /data

COPY --from=builder /opt/venv /opt/venv
# Read-only for the daemon: owned by root.
COPY config/ /config/

# The gazetteer's tables, built once here rather than at every start (see
# monitor/gazetteer/table_cache.py): owned by root, readable by the daemon.
ENV XDG_CACHE_HOME=/opt/cache
RUN /opt/venv/bin/python -c "from monitor.gazetteer import Gazetteer; Gazetteer.load()" \
    && test -f /opt/cache/media-monitor/gazetteer.pickle \
    && chmod -R a+rX /opt/cache

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/config/monitor.yaml \
    MONITOR_DB=/data/monitor.db \
    MONITOR_LOG_FORMAT=json \
    MONITOR_SERVER__HOST=0.0.0.0

WORKDIR /
VOLUME ["/data"]
USER 10001:10001

# /healthz, /readyz and /metrics (server.port; MONITOR_SERVER__HOST above listens on all
# interfaces, where the daemon's default is 127.0.0.1).
EXPOSE 8080

# `monitor health` asks the running daemon's /readyz: exit 0 ready, 1 not. The daemon
# stops within scheduler.shutdown_timeout (20 s by default) of SIGTERM; give it longer
# (docker stop -t 30, compose stop_grace_period: 30s).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["monitor", "health"]
STOPSIGNAL SIGTERM

ENTRYPOINT ["monitor"]
CMD ["run", "-c", "/config/monitor.yaml"]
