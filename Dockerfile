# One image for every distlab role: `distlab node`, `distlab mr coordinator`, `distlab mr worker`.
#
#   docker compose up --build                          (base python:3.11-slim, deps from PyPI)
#   make image                                         (base distlab-base:bookworm, built from
#                                                       Debian packages; deps from build/wheels)
#
# Dependencies are installed in their own stage from pyproject.toml alone, so editing the
# source rebuilds only the last layers. When build/wheels holds wheels (`make wheels` puts
# them there from the host), the install uses only those and never reaches an index.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS dependencies
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# The bracket pattern matches build/wheels when it exists and nothing otherwise, so the same
# file builds with or without host-built wheels.
COPY pyproject.toml build/wheel[s] /tmp/context/
RUN set -eu; \
    if ls /tmp/context/*.whl >/dev/null 2>&1; then \
        export PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/context; \
    fi; \
    python3 -m venv /opt/distlab; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/context/pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt; \
    /opt/distlab/bin/pip install --quiet --upgrade "setuptools>=77" wheel; \
    /opt/distlab/bin/pip install --quiet -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
ENV PATH=/opt/distlab/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A fixed uid, so files on shared volumes have the same owner in every container.
RUN groupadd --system --gid 10001 distlab \
    && useradd --system --uid 10001 --gid distlab --home-dir /home/distlab --create-home \
        --shell /usr/sbin/nologin distlab \
    && mkdir -p /data /mr/input /mr/output \
    && chown -R distlab:distlab /data /mr
COPY --from=dependencies /opt/distlab /opt/distlab
COPY pyproject.toml README.md /tmp/distlab/
COPY src /tmp/distlab/src
RUN pip install --quiet --no-deps --no-index --no-build-isolation /tmp/distlab \
    && rm -rf /tmp/distlab

USER distlab
WORKDIR /home/distlab
EXPOSE 7000 9000
# Every role serves gRPC health on the port of LISTEN_ADDR (a node's default is 7000).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD \
    python3 -c 'import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; port = (os.environ.get("LISTEN_ADDR") or ":7000").rpartition(":")[2]; reply = g.HealthStub(grpc.insecure_channel("127.0.0.1:" + port)).Check(h.HealthCheckRequest(), timeout=3); sys.exit(reply.status != h.HealthCheckResponse.SERVING)'
# Exec form: distlab receives SIGTERM itself and flushes its spans before exiting.
ENTRYPOINT ["distlab"]
CMD ["node"]
