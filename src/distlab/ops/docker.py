"""The Docker side of fault injection: compose containers found by label, driven by the CLI.

Containers are found through the labels every Compose version puts on them
(`com.docker.compose.project`, `com.docker.compose.service`), so the same code works with
`docker compose` and the older `docker-compose`, whatever the container names look like.
Everything goes through the `docker` command: nothing here needs a Docker SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.wire.addresses import Address, parse_cluster_nodes

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DOCKER_TIMEOUT_SECONDS = 60.0

# Where docker-compose.yml publishes node N's gRPC port: PUBLISH_HOST:700N.
PUBLISH_HOST_VARIABLE = "DISTLAB_PUBLISH_HOST"
COMPOSE_NODES = 3

# Container operations that map one to one onto a `docker` sub-command.
CONTAINER_OPERATIONS = ("kill", "stop", "start", "pause", "unpause", "restart")


class DockerError(Exception):
    """A docker command failed or could not run; the message is one line saying which and why."""


@dataclass(frozen=True, slots=True)
class Container:
    id: str
    name: str
    project: str
    service: str
    # "running", "paused", "exited", ...
    state: str
    # network name -> the aliases the container has on it
    networks: dict[str, list[str]] = field(default_factory=dict)


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_SECONDS) -> str:
    """Run `docker ARGS...` and return its standard output; DockerError when it fails."""
    command = ["docker", *args]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   check=False)
    except FileNotFoundError as error:
        raise DockerError("the docker command is not installed") from error
    except subprocess.TimeoutExpired as error:
        raise DockerError(f"`{' '.join(command)}` did not finish within {timeout:g} s") from error
    if completed.returncode != 0:
        reason = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
        raise DockerError(f"`{' '.join(command)}` failed: {reason[-1] if reason else 'no output'}")
    return completed.stdout


def engine_answers() -> str | None:
    """None when a Docker engine answers, else why not (for skipping or for error messages)."""
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=20.0)
    except DockerError as error:
        return str(error)
    return None


def compose_containers(project: str | None = None) -> list[Container]:
    """Every container (running or not) of compose `project`, or of every compose project."""
    label = f"{PROJECT_LABEL}={project}" if project else PROJECT_LABEL
    ids = docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}").split()
    if not ids:
        return []
    return [_container(document) for document in json.loads(docker("inspect", *ids))]


def _container(document: dict[str, object]) -> Container:
    config = document["Config"]
    state = document["State"]
    settings = document["NetworkSettings"]
    assert isinstance(config, dict) and isinstance(state, dict) and isinstance(settings, dict)
    labels = config.get("Labels") or {}
    networks = {name: list(attached.get("Aliases") or [])
                for name, attached in (settings.get("Networks") or {}).items()}
    return Container(
        id=str(document["Id"]), name=str(document["Name"]).lstrip("/"),
        project=str(labels.get(PROJECT_LABEL, "")), service=str(labels.get(SERVICE_LABEL, "")),
        state=str(state.get("Status", "unknown")), networks=networks,
    )


def project_networks(project: str) -> list[str]:
    """The networks compose created for `project` (normally `<project>_default`)."""
    names = docker("network", "ls", "--quiet", "--filter", f"label={PROJECT_LABEL}={project}",
                   "--format", "{{.Name}}").split()
    return sorted(names)


def find_service(service: str, project: str | None) -> Container:
    """The container of compose `service`; the project is inferred when only one has it.

    Raises LookupError, whose message says what to do, when there is none or the choice is
    ambiguous.
    """
    candidates = [c for c in compose_containers(project) if c.service == service]
    if not candidates:
        where = f"compose project {project!r}" if project else "any compose project"
        raise LookupError(f"no container of service {service!r} in {where}; is the cluster up "
                          "(`make up` or `docker compose up -d`)?")
    projects = sorted({c.project for c in candidates})
    if len(projects) > 1:
        raise LookupError(f"service {service!r} runs in several compose projects "
                          f"({', '.join(projects)}): choose one with --project")
    if len(candidates) > 1:
        # Scaled services: the first replica is the one named in faults.
        candidates.sort(key=lambda c: c.name)
    return candidates[0]


def container_operation(operation: str, container: Container) -> None:
    """`docker kill|stop|start|pause|unpause|restart CONTAINER`."""
    if operation not in CONTAINER_OPERATIONS:
        raise ValueError(f"not a container operation: {operation}")
    docker(operation, container.id)


def isolate(container: Container) -> list[str]:
    """Disconnect the container from every network it is on; returns those networks.

    Its peers can no longer reach it, nor it them; published ports stop answering too.
    """
    for network in container.networks:
        docker("network", "disconnect", network, container.id)
    return sorted(container.networks)


def reconnect(container: Container, networks: Sequence[str]) -> list[str]:
    """Connect the container to each of `networks` it is missing from, under its service name
    (the alias its peers resolve); returns the networks it was connected to."""
    connected = []
    for network in networks:
        if network in container.networks:
            continue
        docker("network", "connect", "--alias", container.service, network, container.id)
        connected.append(network)
    return connected


def compose_node_addresses() -> dict[NodeId, Address]:
    """The nodes of docker-compose.yml at their published gRPC ports, on
    $DISTLAB_PUBLISH_HOST (127.0.0.1 by default); ConfigError when that host is malformed."""
    host = os.environ.get(PUBLISH_HOST_VARIABLE) or "127.0.0.1"
    return parse_cluster_nodes(",".join(f"{n}={host}:{7000 + n}"
                                        for n in range(1, COMPOSE_NODES + 1)),
                               PUBLISH_HOST_VARIABLE)
