# distlab: developer commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROTO_DIR := protos/distlab/v1
PROTOS := $(wildcard $(PROTO_DIR)/*.proto)
NODES ?= 3

.PHONY: help venv proto proto-check lint typecheck test test-fast up bench clean

help:
	@echo "make test     install into $(VENV), check generated code, lint, type-check, run every test"
	@echo "make up       run a local $(NODES)-node cluster (Ctrl-C stops it)"
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

up: venv
	$(VENV)/bin/distlab up --nodes $(NODES)

bench: venv
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
