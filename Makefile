# distlab: developer commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROTO_DIR := protos/distlab/v1
PROTOS := $(wildcard $(PROTO_DIR)/*.proto)
NODES ?= 3

.PHONY: help venv proto proto-check lint typecheck test test-fast local-up bench clean \
	wheels base-image image up down clean-volumes chaos-demo test-docker

help:
	@echo "make test     install into $(VENV), check generated code, lint, type-check, run every test"
	@echo "make local-up run a local $(NODES)-node cluster of processes (Ctrl-C stops it)"
	@echo "make up       build the image and start the Docker Compose cluster (OBSERVABILITY=1 adds"
	@echo "              Jaeger, Prometheus and Grafana); make down stops it and keeps the volumes,"
	@echo "              make clean-volumes stops it and deletes them"
	@echo "make chaos-demo  write, kill the leader's container, show nothing was lost"
	@echo "make proto    regenerate src/distlab/proto from $(PROTO_DIR)"
	@echo "make bench    run the benchmarks in bench/"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The include path maps the proto folder onto the Python package, so generated modules
# import each other as `distlab.proto.<name>_pb2`.
PROTOC = $(PY) -m grpc_tools.protoc -Idistlab/proto=$(PROTO_DIR) \
	--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	--python_out=$(1) --pyi_out=$(1) --grpc_python_out=$(1) --mypy_grpc_out=$(1) $(PROTOS)

proto: venv
	$(call PROTOC,src)

# Fails when the committed generated code differs from what the .proto files produce.
proto-check: venv
	@tmp=$$(mktemp -d) && $(call PROTOC,$$tmp) && \
	if diff -r -x __pycache__ -x __init__.py $$tmp/distlab/proto src/distlab/proto; then \
		echo "generated code is up to date"; rm -rf $$tmp; \
	else echo "src/distlab/proto is stale: run 'make proto' and commit the result" >&2; rm -rf $$tmp; exit 1; fi

lint: venv
	$(VENV)/bin/ruff check src tests $(wildcard bench)

typecheck: venv
	$(VENV)/bin/mypy

test: venv proto-check lint typecheck
	$(PY) -m pytest

local-up: venv
	$(VENV)/bin/distlab up --nodes $(NODES)

bench: venv
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

# ---- Docker

# `docker compose` (v2) where installed, else the standalone docker-compose (v1).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# The image every service runs, built on a Python base made from Debian's packages (no
# registry needed); BASE_IMAGE=python:3.11-slim uses the official one instead.
BASE_IMAGE ?= distlab-base:bookworm
IMAGE ?= distlab:latest
WHEELS := build/wheels
COMPOSE_PROFILE_ARGS := $(if $(filter 1 yes true,$(OBSERVABILITY)),--profile observability,)
UP_ENV := $(if $(filter 1 yes true,$(OBSERVABILITY)),OTLP_ENDPOINT=jaeger:4317,)

# Wheels of every run-time dependency (and of the build backend), made on the host, so the
# image build installs from build/wheels without reaching an index. Rebuilt when
# pyproject.toml changes.
$(WHEELS)/.complete: pyproject.toml $(VENV)/.installed
	rm -rf $(WHEELS) && mkdir -p $(WHEELS)
	$(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > build/requirements.txt
	$(PY) -m pip wheel --quiet --wheel-dir $(WHEELS) -r build/requirements.txt "setuptools>=77" wheel
	touch $@

wheels: $(WHEELS)/.complete

# Kept once built: REBUILD=1 make base-image builds it again.
base-image:
	@if [ "$(BASE_IMAGE)" = distlab-base:bookworm ]; then deploy/base-image/build.sh $(BASE_IMAGE); \
	else echo "using base image $(BASE_IMAGE)"; fi

image: base-image wheels
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) --tag $(IMAGE) .

up: image
	$(UP_ENV) $(COMPOSE) $(COMPOSE_PROFILE_ARGS) up -d --no-build
	@# Poll (up to 30 s) until every node answers, then show the cluster.
	@for attempt in $$(seq 30); do $(VENV)/bin/distlab chaos status >/dev/null 2>&1 && break; sleep 1; done
	$(VENV)/bin/distlab chaos status

# The volumes (each node's data, the MapReduce files) outlive `down`, so the next `make up`
# resumes the same cluster; `clean-volumes` deletes them too.
down:
	$(COMPOSE) --profile observability down
	@echo "stopped; the volumes (node data, MapReduce files) are kept: make clean-volumes deletes them"

clean-volumes:
	$(COMPOSE) --profile observability down --volumes

chaos-demo: venv
	$(VENV)/bin/distlab chaos demo

test-docker: image
	$(PY) -m pytest tests/docker tests/cluster/test_chaos_setfault.py -q
