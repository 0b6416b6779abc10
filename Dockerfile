# Medic's image: web, agent-gateway, worker, beat and migrate all run it (docker-compose.yml).
#
# The base image is pinned by tag. Pin it by digest as well when you build for production:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   # prints the digest
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# (docs/deployment.md, "Pinning the base images").
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The whole runtime dependency tree, pinned with hashes (scripts/lock.sh writes it); the project
# itself is not installed, the processes run from /app. tests/production/test_smoke.py runs this
# same pip command into a fresh virtualenv and starts every compose process from it.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
# medic runs the processes; medic-sandbox runs the scripts the worker executes
# (MEDIC_SANDBOX_USER), so that they cannot read the worker's environment or files.
RUN useradd --system --uid 10001 --no-create-home medic \
    && useradd --system --uid 10002 --no-create-home --shell /usr/sbin/nologin medic-sandbox
COPY . .
RUN MEDIC_EMBEDDED=1 MEDIC_VAR_DIR=/tmp/build STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --no-input -v 0 && rm -rf /tmp/build
ENV STATIC_ROOT=/app/staticfiles
USER medic
EXPOSE 8000 8001 9809
CMD ["gunicorn", "medic.front:application", "--config", "deploy/gunicorn.conf.py"]
