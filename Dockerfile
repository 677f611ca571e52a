# syntax=docker/dockerfile:1
# One image for the whole platform. The container runs `backorder serve <service>`:
#   docker run IMAGE inventory      (catalog_sync, storefront, billing, gateway)
# and the migrations Job overrides the command with `backorder migrate`.
#
# The base is pinned by tag and digest (multi-arch index of python:3.11.14-slim-bookworm);
# bump both together.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---- builder: wheels for the project and every dependency, at the versions and hashes of
# uv.lock (the runtime set: no dev tools, no code generator). All ship binary wheels, so no
# compiler is needed.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY tools/requirements-uv.txt ./tools/
RUN pip install --require-hashes -r tools/requirements-uv.txt
COPY pyproject.toml uv.lock README.md ./
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt -o /tmp/requirements.txt \
    && pip wheel --require-hashes --wheel-dir /wheels -r /tmp/requirements.txt
COPY gen ./gen
COPY services ./services
COPY sandbox ./sandbox
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the installed wheels and nothing else; runs as an unprivileged user.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels backorder \
    && groupadd --system --gid 10001 backorder \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin backorder
# Nothing is written here: pods run with a read-only root filesystem and an emptyDir on /tmp.
WORKDIR /app
USER 10001:10001
# gateway HTTP; gRPC inventory, catalog_sync, storefront, billing, inventory's partner ERP port;
# Prometheus metrics of the gRPC services.
EXPOSE 8000 50051 50052 50053 50054 50055 9151 9152 9153 9154
ENTRYPOINT ["backorder", "serve"]
CMD ["gateway"]
