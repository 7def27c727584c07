"""Durable file operations: the small set of steps that make a file change survive a crash.

POSIX only promises that a rename or a new directory entry is durable once the directory
itself has been fsynced, so every create, rename and delete here is followed by one.
"""

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (creations, renames, deletions) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: `os.write` may write fewer bytes than asked."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write every byte of `data` at `offset`: `os.pwrite` may write fewer bytes than asked."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves either the old or the new contents.

    The data goes to a temporary sibling, is fsynced, renamed over the target, and the
    directory is fsynced so the rename itself is durable.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def remove_leftover(path: Path) -> bool:
    """Delete a temporary file a crash left behind; report whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
