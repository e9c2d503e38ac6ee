# The provider runtime (`python -m provider`) with the Telegram engine: Python only.
# Build from the repository root (the context .dockerignore keeps it to what the runtime needs):
#   docker build -f docker/telegram.Dockerfile -t provider-telegram .
# scripts/build-images.sh builds it for linux/amd64 and pushes it to ECR.
# Base images are pinned to exact tags; pin digests too with --build-arg PYTHON_IMAGE=python:…@sha256:….
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS python-deps
COPY requirements.txt requirements-provider.txt /tmp/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -r /tmp/requirements-provider.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin provider
COPY --from=python-deps /opt/venv /opt/venv
WORKDIR /app
COPY chalicelib/ chalicelib/
COPY provider/ provider/
COPY docker/healthcheck.py healthcheck.py
RUN python -m compileall -q chalicelib provider
USER 10001
# ECS does not read this (the task definition in infra/service.yaml repeats it); `docker run` does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/healthcheck.py"]
ENTRYPOINT ["/opt/venv/bin/python", "-m", "provider"]
