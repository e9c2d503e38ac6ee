# The provider runtime (`python -m provider`) with the WhatsApp engine: Python, plus Node 20 for
# the Baileys bridge (provider/engines/whatsapp/bridge, installed with `npm ci` from its lock file).
# Build from the repository root (the context .dockerignore keeps it to what the runtime needs):
#   docker build -f docker/whatsapp.Dockerfile -t provider-whatsappweb .
# scripts/build-images.sh builds it for linux/amd64 and pushes it to ECR.
# Base images are pinned to exact tags; pin digests too with --build-arg PYTHON_IMAGE=…@sha256:…
# and --build-arg NODE_IMAGE=…@sha256:…. Both are Debian bookworm, so the node binary copied from
# the Node image runs on the Python image's glibc and libstdc++.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

FROM ${NODE_IMAGE} AS bridge-deps
WORKDIR /bridge
COPY provider/engines/whatsapp/bridge/package.json provider/engines/whatsapp/bridge/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

FROM ${PYTHON_IMAGE} AS python-deps
COPY requirements.txt requirements-provider.txt /tmp/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -r /tmp/requirements-provider.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NODE_ENV=production
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin provider
COPY --from=bridge-deps /usr/local/bin/node /usr/local/bin/node
COPY --from=python-deps /opt/venv /opt/venv
WORKDIR /app
COPY chalicelib/ chalicelib/
COPY provider/ provider/
COPY --from=bridge-deps /bridge/node_modules provider/engines/whatsapp/bridge/node_modules
COPY docker/healthcheck.py healthcheck.py
RUN python -m compileall -q chalicelib provider \
    && node --version
USER 10001
# ECS does not read this (the task definition in infra/service.yaml repeats it); `docker run` does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/healthcheck.py"]
ENTRYPOINT ["/opt/venv/bin/python", "-m", "provider"]
