"""Loopback ports for local child processes, in a module of its own so that a command can
choose them before it imports anything heavy (`distlab mr run` starts its processes first)."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_loopback_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on loopback; all sockets are held until every port is
    chosen, so the list has no repeats."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
