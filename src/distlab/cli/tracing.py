"""Tracing for the commands: a client command's own tracing, and the early check of the
sampler variables for commands that start traced processes.

A bad `OTEL_TRACES_SAMPLER` or `OTEL_TRACES_SAMPLER_ARG` is the command's usage error (one
line, exit status 2), said before any node or worker is started rather than as the start-up
failure of each child process.
"""

from __future__ import annotations

import os

from distlab.cli.common import UsageError
from distlab.telemetry.tracing import Tracing, client_tracing, sampler_setting
from distlab.wire.addresses import ConfigError


def command_tracing() -> Tracing | None:
    """This process's client tracing (see `client_tracing`): None without OTLP_ENDPOINT."""
    try:
        return client_tracing()
    except ConfigError as error:
        raise UsageError(str(error)) from error


def check_sampler_environment() -> None:
    try:
        sampler_setting(os.environ)
    except ConfigError as error:
        raise UsageError(str(error)) from error
