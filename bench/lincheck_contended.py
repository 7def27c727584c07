"""The checker on one contended key: many concurrent writers and readers, 50-500 operations.

Each history comes from a simulated register (distlab.check._simulated): 8, 12 or 16
processes put and get one key, most of them in the middle of an operation at any
moment, and every operation takes effect at a moment inside its interval, so the
history is linearizable by construction. One copy per size and process count has one
read made stale, which makes it provably not linearizable.

distlab's checker runs in this process. Porcupine runs in the same run when a program
that times it is given (`--porcupine PROGRAM`, or the PORCUPINE variable): the program
gets the history files (distlab's JSON lines) as arguments and prints one line per file,
`FILE RESULT SECONDS`, with Porcupine's CheckResult (Ok, Illegal or Unknown) and the
time of one check, not of reading the file, for a key/value model whose gets read the
value last put (null before any). Porcupine is not part of distlab; without the program
the benchmark says so and gives distlab's figures alone.

The two checkers take turns over the repetitions; each figure is a median. The bar, for
the linearizable histories: at most 2x Porcupine's time, and at most 1 s up to 250
operations; the exit status is 1 if a history misses it or gets a wrong verdict.

Run: .venv/bin/python bench/lincheck_contended.py [--porcupine PROGRAM] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from distlab.check import Verdict, check, read_history
from distlab.check._simulated import contended_register, history_lines, stale_read

SIZES = (50, 100, 250, 500)
PROCESSES = (8, 12, 16)
SEEDS = (1, 2)
# A check is repeated until this much time is spent, and the median taken, so that a
# short one is not measured by one time slice of a busy machine.
SAMPLE_SECONDS = 0.05
MAX_RATIO = 2.0
MAX_SECONDS = 1.0
MAX_SECONDS_UP_TO = 250
PORCUPINE_RESULTS = {"Ok": Verdict.LINEARIZABLE, "Illegal": Verdict.NOT_LINEARIZABLE,
                     "Unknown": Verdict.UNKNOWN}


@dataclass
class Case:
    name: str
    operations: int
    expected: Verdict
    path: Path
    distlab: list[float] = field(default_factory=list)
    porcupine: list[float] = field(default_factory=list)
    distlab_verdict: Verdict = Verdict.UNKNOWN
    porcupine_verdict: Verdict = Verdict.UNKNOWN


def generate(directory: Path) -> list[Case]:
    cases = []
    for operations in SIZES:
        for processes in PROCESSES:
            for seed in SEEDS:
                simulated = contended_register(seed, operations, processes)
                variants = [("ok", Verdict.LINEARIZABLE, simulated)]
                if seed == SEEDS[0]:
                    variants.append(("stale", Verdict.NOT_LINEARIZABLE,
                                     stale_read(simulated, seed)))
                for kind, expected, ops in variants:
                    name = f"n{operations}-p{processes}-s{seed}-{kind}"
                    path = directory / f"{name}.jsonl"
                    path.write_text("\n".join(history_lines(ops)) + "\n")
                    cases.append(Case(name, operations, expected, path))
    return cases


def time_distlab(case: Case, timeout: float) -> None:
    history = read_history(case.path)
    durations: list[float] = []
    while sum(durations) < SAMPLE_SECONDS:
        started = time.perf_counter()
        result = check(history, "kv", timeout=timeout)
        durations.append(time.perf_counter() - started)
        if result.verdict is Verdict.UNKNOWN:
            break
    case.distlab.append(statistics.median(durations))
    case.distlab_verdict = result.verdict


def time_porcupine(program: list[str], cases: list[Case]) -> None:
    by_path = {str(case.path): case for case in cases}
    output = subprocess.run([*program, *by_path], capture_output=True, text=True,
                            check=True).stdout
    for line in output.splitlines():
        path, word, seconds = line.rsplit(maxsplit=2)
        case = by_path.pop(path)
        case.porcupine.append(float(seconds))
        case.porcupine_verdict = PORCUPINE_RESULTS[word]
    if by_path:
        raise SystemExit(f"the Porcupine program gave no figure for {sorted(by_path)}")


def report(cases: list[Case], repeats: int) -> list[str]:
    """Print the table; return what misses the bar."""
    print(f"{'history':<20} {'distlab':<17} {'s':>9} {'Porcupine':<17} {'s':>9} "
          f"{'ratio':>7}")
    misses = []
    ratios = []
    for case in cases:
        ours = statistics.median(case.distlab)
        line = f"{case.name:<20} {case.distlab_verdict.value:<17} {ours:9.5f}"
        if case.distlab_verdict is not case.expected:
            misses.append(f"{case.name}: distlab says {case.distlab_verdict.value}")
        if case.expected is Verdict.LINEARIZABLE and case.operations <= MAX_SECONDS_UP_TO \
                and ours > MAX_SECONDS:
            misses.append(f"{case.name}: {ours:.2f} s")
        if case.porcupine:
            theirs = statistics.median(case.porcupine)
            ratio = ours / theirs
            line += f" {case.porcupine_verdict.value:<17} {theirs:9.5f} {ratio:7.2f}"
            if case.porcupine_verdict is Verdict.UNKNOWN:
                line += " (Porcupine gave up: a bound)"
            elif case.porcupine_verdict is not case.expected:
                misses.append(f"{case.name}: Porcupine says {case.porcupine_verdict.value}")
            if case.expected is Verdict.LINEARIZABLE:
                ratios.append(ratio)
                if ratio > MAX_RATIO:
                    misses.append(f"{case.name}: {ratio:.2f}x Porcupine's time")
        print(line)
    print(f"\ndistlab: {sum(statistics.median(c.distlab) for c in cases):.3f} s for "
          f"{len(cases)} histories (medians of {repeats} repetitions)")
    if ratios:
        print(f"linearizable histories, distlab's time over Porcupine's: median "
              f"{statistics.median(ratios):.2f}, largest {max(ratios):.2f}")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--porcupine", default=os.environ.get("PORCUPINE"),
                        help="program that times Porcupine (see the module docstring)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="distlab's time budget per check, in seconds")
    parser.add_argument("--keep", type=Path, help="write the histories here and keep them")
    args = parser.parse_args()
    program = shlex.split(args.porcupine) if args.porcupine else None
    if program is None:
        go = shutil.which("go")
        where = f"a Go toolchain is at {go}" if go else "no Go toolchain is installed"
        print(f"Porcupine not timed: no --porcupine program given ({where}); "
              "distlab's figures alone.\n")

    with tempfile.TemporaryDirectory() as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        cases = generate(directory)
        for _ in range(args.repeats):
            for case in cases:
                time_distlab(case, args.timeout)
            if program is not None:
                time_porcupine(program, cases)

    misses = report(cases, args.repeats)
    for miss in misses:
        print(f"MISSES THE BAR: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
