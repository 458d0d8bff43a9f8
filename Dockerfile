# syntax=docker/dockerfile:1
# tcgjobs: one-shot jobs. Each container runs one job (`run JOB`) and exits with its status
# code; Kubernetes CronJobs (deploy/k8s) or cron start it. See docs/deploy.md.

# --- build: the tcgjobs wheel and the wheels of its dependencies ------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tcgjobs ./tcgjobs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime: the wheels installed into a virtual environment, run as a non-root user ---------
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 tcgjobs \
 && useradd --system --uid 10001 --gid tcgjobs --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tcgjobs
# Offline install from the build stage's wheels only: what was tested is what runs.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/tcgjobs \
 && /opt/tcgjobs/bin/pip install --no-cache-dir --no-index --find-links=/wheels tcgjobs \
 && mkdir -p /app/database/backups \
 && chown -R tcgjobs:tcgjobs /app/database
# The original service's paths, so its volume layout keeps working.
ENV PATH=/opt/tcgjobs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/app/database/pokemon-data.sqlite3.db \
    BACKUP_DIR=/app/database/backups
WORKDIR /app
USER 10001:10001
VOLUME ["/app/database"]
# No HEALTHCHECK: the container is one-shot and its exit code is its health. Schedule
# `run database-health-check` instead.
ENTRYPOINT ["tcgjobs"]
CMD ["list"]
