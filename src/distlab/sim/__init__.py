"""Deterministic simulation: the real drivers on virtual time, with faults, checks and sweeps.

- `loop`: the virtual-time asyncio loop everything runs on;
- `clock`, `network`, `disk`, `storage`: the simulator's ports and fault models (per-node
  clocks with drift, a seeded faulty network, a disk that loses, tears, rots and fails);
- `world`: nodes hosting one instance per group under the generic driver;
- `faults`: fault schedules; `workload`: KV clients and their checked history;
- `harness`: the protocol registry, runs from seeds, sweeps; `shrink`: schedule shrinking;
- `raft`: Raft's registration (engine, invariants, durable format, bug tuning) and the
  6.5840 lab tester.

`distlab sim PROTOCOL` (distlab.cli.sim) is the command line over `harness`.
"""
