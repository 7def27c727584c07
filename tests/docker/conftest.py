"""Fixtures for tests that run the compose cluster: the image, and one compose project per use.

Every test here needs a Docker engine and Compose; without them the tests are skipped with
the reason. The image is built once per session with `make image` (on the base image made
from Debian's packages, kept between runs, and wheels built on the host), unless
DISTLAB_TEST_IMAGE names an image to use as it is.

Each project gets a unique name and its own loopback address for the published ports
(127.77.x.y), so a test run never collides with a cluster started by `make up`; teardown
removes its containers, networks and volumes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from distlab.core.ids import NodeId
from distlab.ops.docker import engine_answers

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEFAULT_IMAGE = "distlab:latest"
IMAGE_BUILD_TIMEOUT_SECONDS = 1500
_project_numbers = itertools.count(1)


def compose_command() -> list[str] | None:
    """`docker compose` (v2) when installed, else `docker-compose` (v1), else None."""
    try:
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30,
                            check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if v2.returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def skip_or_fail(reason: str) -> None:
    """Skip, unless the run requires Docker (CI sets DISTLAB_REQUIRE_DOCKER=1 where an engine
    answers), in which case a missing piece is a failure rather than a silent skip."""
    if os.environ.get("DISTLAB_REQUIRE_DOCKER") == "1":
        pytest.fail(f"Docker tests are required here but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def compose() -> list[str]:
    reason = engine_answers()
    if reason is not None:
        skip_or_fail(f"no Docker engine answers: {reason}")
    command = compose_command()
    if command is None:
        skip_or_fail("Docker Compose is not installed (neither `docker compose` nor "
                     "`docker-compose`)")
    assert command is not None
    return command


@pytest.fixture(scope="session")
def image(compose: list[str]) -> str:
    """The distlab image, built (or found in the build cache) once per session."""
    given = os.environ.get("DISTLAB_TEST_IMAGE")
    if given:
        return given
    started = time.monotonic()
    built = subprocess.run(["make", "image", f"IMAGE={DEFAULT_IMAGE}"], cwd=REPO,
                           capture_output=True, text=True, timeout=IMAGE_BUILD_TIMEOUT_SECONDS,
                           check=False)
    if built.returncode != 0:
        pytest.fail("`make image` failed:\n" + (built.stdout + built.stderr)[-3000:])
    print(f"image {DEFAULT_IMAGE} ready in {time.monotonic() - started:.1f} s")
    return DEFAULT_IMAGE


class ComposeProject:
    """One compose project of docker-compose.yml (plus override files), driven by the CLI."""

    def __init__(self, command: list[str], image: str, purpose: str,
                 overrides: Sequence[Path] = (), env: dict[str, str] | None = None) -> None:
        number = next(_project_numbers)
        pid = os.getpid()
        self.name = f"distlab-test-{pid}-{purpose}"
        # A loopback address of its own: 127.0.0.0/8 is all loopback on Linux.
        self.host = f"127.77.{pid % 250 + 1}.{number}"
        self.files = [COMPOSE_FILE, *overrides]
        self._command = command
        self.env = {**os.environ, "DISTLAB_IMAGE": image, "DISTLAB_PUBLISH_HOST": self.host,
                    "COMPOSE_PROJECT_NAME": self.name, "OTLP_ENDPOINT": "", **(env or {})}

    def run(self, *args: str, timeout: float = 180.0, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        files = [item for path in self.files for item in ("-f", str(path))]
        completed = subprocess.run([*self._command, *files, "-p", self.name, *args], cwd=REPO,
                                   env=self.env, capture_output=True, text=True, timeout=timeout,
                                   check=False)
        if check and completed.returncode != 0:
            pytest.fail(f"compose {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
        return completed

    def up(self, *services: str) -> None:
        self.run("up", "-d", "--no-build", *services)

    def down(self) -> None:
        self.run("down", "--volumes", "--timeout", "3", check=False)

    def container(self, service: str) -> str:
        container_id = self.run("ps", "-q", service).stdout.strip()
        assert container_id, f"no container for {service}"
        return container_id

    def docker(self, *args: str, timeout: float = 60.0) -> str:
        completed = subprocess.run(["docker", *args], capture_output=True, text=True,
                                   timeout=timeout, check=False)
        if completed.returncode != 0:
            pytest.fail(f"docker {' '.join(args)} failed: {completed.stderr.strip()}")
        return completed.stdout

    def logs(self, service: str) -> str:
        """The service's output so far, standard output and error (where logging goes)."""
        completed = subprocess.run(["docker", "logs", self.container(service)],
                                   capture_output=True, text=True, timeout=60, check=False)
        return completed.stdout + completed.stderr

    @property
    def nodes(self) -> dict[NodeId, str]:
        """Node id -> the node's published gRPC address."""
        return {NodeId(n): f"{self.host}:{7000 + n}" for n in (1, 2, 3)}

    @property
    def metrics(self) -> dict[NodeId, str]:
        """Node id -> the node's published metrics address (host:port)."""
        return {NodeId(n): f"{self.host}:{9000 + n}" for n in (1, 2, 3)}

    def metrics_url(self, port: int) -> str:
        return f"http://{self.host}:{port}/metrics"


@pytest.fixture(scope="module")
def make_project(compose: list[str], image: str) -> Iterator[Callable[..., ComposeProject]]:
    """A factory of compose projects, each taken down (with its volumes) after the module."""
    projects: list[ComposeProject] = []

    def make(purpose: str, overrides: Sequence[Path] = (),
             env: dict[str, str] | None = None) -> ComposeProject:
        project = ComposeProject(compose, image, purpose, overrides, env)
        projects.append(project)
        return project

    yield make
    for project in projects:
        project.down()
