"""How many workers run a phase at once, observed through marker files in the current
directory (the 6.5840 lab's `nparallel`): each caller leaves `mr-worker-<phase>-<pid>`, counts
the markers whose process is alive, holds on for a second so overlaps can be seen, and leaves.
"""

from __future__ import annotations

import os
import re
import time


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def nparallel(phase: str) -> int:
    pid = os.getpid()
    marker = f"mr-worker-{phase}-{pid}"
    with open(marker, "w") as handle:
        handle.write("x")
    pattern = re.compile(rf"mr-worker-{re.escape(phase)}-(\d+)")
    running = 0
    for name in os.listdir("."):
        match = pattern.fullmatch(name)
        if match and _alive(int(match.group(1))):
            running += 1
    time.sleep(1.0)
    os.remove(marker)
    return running
