# syntax=docker/dockerfile:1
#
# Promo War-Room image: `warroom serve` as a non-root user on port 8000.
#
#   docker build -t promo-warroom .
#   docker run --init -p 8000:8000 -e DATABASE_URL=postgresql://user:pass@host:5432/db promo-warroom
#
# Without DATABASE_URL the server runs its embedded PostgreSQL in WARROOM_DATA_DIR
# (/var/lib/warroom); mount a volume there to keep the data:
#   docker run --init -p 8000:8000 -v warroom-data:/var/lib/warroom promo-warroom
# Campaign YAML files are read at start from WARROOM_CAMPAIGNS_DIR (/etc/warroom/campaigns);
# none are baked in: mount a directory there, e.g. -v "$PWD/campaigns:/etc/warroom/campaigns:ro".
# docker-compose.yml runs the image against a separate postgres:16 instead.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv holding the package and its dependencies -----------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so that a code change
# does not reinstall them (only a change to pyproject.toml does).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the package itself (setuptools needs every package it ships, and README.md
# which pyproject.toml names as the readme). No test extras.
COPY README.md ./
COPY app ./app
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY bench ./bench
COPY migrations ./migrations
# Then check that the installed copy finds its migrations, as the runtime will
# (python -P: the current directory /src is not on sys.path, so the source tree cannot stand in).
RUN pip install --no-deps . \
 && python -P -c "from app.core.database import MIGRATIONS_DIR, head_revision; assert 'site-packages' in str(MIGRATIONS_DIR), MIGRATIONS_DIR; print('migrations head:', head_revision())"

# ---- runtime ----------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# PostgreSQL (embedded mode) refuses to run as root; the service never needs it.
RUN groupadd --system --gid 10001 warroom \
 && useradd --system --uid 10001 --gid warroom --create-home --home-dir /home/warroom warroom \
 && mkdir -p /var/lib/warroom \
 && chown warroom:warroom /var/lib/warroom

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WARROOM_HOST=0.0.0.0 \
    WARROOM_PORT=8000 \
    WARROOM_LOG_FORMAT=json \
    WARROOM_DATA_DIR=/var/lib/warroom \
    WARROOM_CAMPAIGNS_DIR=/etc/warroom/campaigns \
    WARROOM_RULES_DIR=/etc/warroom/rules \
    WARROOM_NOTIFY_FILE=/etc/warroom/notify.yaml

# Numeric, so that runtimes enforcing runAsNonRoot can verify it (10001 = warroom).
USER 10001:10001
WORKDIR /home/warroom

EXPOSE 8000 8001

# Liveness only (the process answers); /readyz also checks the database and schema.
# No curl in the slim image, so Python does the request; an HTTP error or no answer raises, exit 1 = unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WARROOM_PORT', '8000'), timeout=4)"]

# Exec form: warroom gets SIGTERM directly and drains in-flight batches
# (WARROOM_SHUTDOWN_GRACE_S, default 30 s) before exiting.
CMD ["warroom", "serve"]
