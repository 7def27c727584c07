"""The 6.5840 Raft tester's helpers (config.go), on virtual time.

`LabCluster` offers the same vocabulary as the lab's `config`: `one`, `n_committed`, `wait`,
`check_one_leader`, `check_terms`, `check_no_leader`, `crash1`, `start1`, `connect`,
`disconnect`, `rpc_total`. Where the lab sleeps, the cluster runs virtual time forward.
Commands are decimal integers encoded as bytes, like the lab's `int` commands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.raft import Raft, Role
from distlab.runtime.sim.network import (
    LONG_REORDERING,
    RELIABLE,
    UNRELIABLE,
    UNRELIABLE_LONG_REORDERING,
    NetworkConditions,
)
from distlab.runtime.sim.world import SimOptions, Simulation

Process = Generator[int, None, int]

# The tester's election timeout: its tests sleep in multiples of it.
ELECTION_TIMEOUT_MS = 1000
# The tester's snapshot interval: the applier compacts after this many applied entries.
SNAPSHOT_INTERVAL = 10


class ProcessHandle:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = False
        self.result = -1


def command(value: int) -> bytes:
    return str(value).encode()


MakeCluster = Callable[..., "LabCluster"]


class LabCluster(Simulation):
    """A simulated cluster with the lab tester's checks. Node ids are 1..n."""

    def __init__(
        self,
        seed: int,
        nodes: int = 3,
        *,
        unreliable: bool = False,
        options: SimOptions | None = None,
        trace: bool = False,
        raft_class: type[Raft] = Raft,
        replay_hint: str | None = None,
    ) -> None:
        super().__init__(
            seed,
            nodes,
            options=options,
            trace=trace,
            raft_class=raft_class,
            replay_hint=replay_hint,
        )
        self._unreliable = unreliable
        self._long_reordering = False
        # the tester's own draws (sleep lengths, commands) must not perturb the cluster's
        self._tester_rng = Random(seed * 7919 + 17)
        self._apply_conditions()

    @property
    def tester_rng(self) -> Random:
        """The tester's own generator (sleep lengths, victims, commands)."""
        return self._tester_rng

    @property
    def n(self) -> int:
        return len(self.nodes)

    def ids(self) -> list[NodeId]:
        return list(self.nodes)

    # --- network modes ---

    def set_unreliable(self, unreliable: bool) -> None:
        self._unreliable = unreliable
        self._apply_conditions()

    def set_long_reordering(self, long_reordering: bool) -> None:
        self._long_reordering = long_reordering
        self._apply_conditions()

    def _apply_conditions(self) -> None:
        table: dict[tuple[bool, bool], NetworkConditions] = {
            (False, False): RELIABLE,
            (True, False): UNRELIABLE,
            (False, True): LONG_REORDERING,
            (True, True): UNRELIABLE_LONG_REORDERING,
        }
        conditions = table[(self._unreliable, self._long_reordering)]
        if conditions is not self.network.conditions:
            self.set_conditions(conditions)

    # --- servers ---

    def connected(self, node: NodeId) -> bool:
        return self.network.is_connected(node) and self.nodes[node].up

    def crash1(self, node: NodeId) -> None:
        """The lab's crash: disconnect, then kill; only persisted state survives."""
        self.disconnect(node)
        self.crash(node)

    def start1(self, node: NodeId) -> None:
        """Restarts a crashed server from its persisted state; it stays disconnected."""
        if self.network.is_connected(node):
            self.disconnect(node)
        self.restart(node)

    def start(self, node: NodeId, value: bytes) -> tuple[int, int, bool]:
        """The lab's `Start`: (index, term, is_leader)."""
        raft = self.nodes[node].raft
        if raft is None:
            return -1, -1, False
        proposal = self.propose(node, value)
        if proposal is None:
            return -1, raft.term, False
        return proposal.index, proposal.term, True

    def get_state(self, node: NodeId) -> tuple[int, bool]:
        raft = self.nodes[node].require_raft()
        return raft.term, raft.role is Role.LEADER

    def rpc_total(self) -> int:
        return self.requests_sent

    # --- the tester's checks ---

    def sleep(self, ms: int) -> None:
        self.run_for(ms)

    def check_one_leader(self) -> NodeId:
        for _ in range(10):
            self.run_for(450 + self._tester_randrange(100))
            by_term: dict[int, list[NodeId]] = defaultdict(list)
            for node in self.nodes:
                if self.connected(node):
                    term, is_leader = self.get_state(node)
                    if is_leader:
                        by_term[term].append(node)
            for term, leaders in by_term.items():
                if len(leaders) > 1:
                    self.fail(f"term {term} has {len(leaders)} (>1) leaders")
            if by_term:
                return by_term[max(by_term)][0]
        self.fail("expected one leader, got none")

    def check_terms(self) -> int:
        term = -1
        for node in self.nodes:
            if self.connected(node):
                node_term, _ = self.get_state(node)
                if term == -1:
                    term = node_term
                elif term != node_term:
                    self.fail("servers disagree on term")
        return term

    def check_no_leader(self) -> None:
        for node in self.nodes:
            if self.connected(node) and self.get_state(node)[1]:
                self.fail(f"expected no leader among connected servers, but n{node} claims it")

    def n_committed(self, index: int) -> tuple[int, bytes | None]:
        """How many servers have applied `index`, and the command there (they must agree)."""
        count = 0
        value: bytes | None = None
        for node in self.nodes.values():
            applied = node.state_machine.commands.get(index)
            if applied is None:
                continue
            if count > 0 and applied != value:
                self.fail(f"committed values do not match: index {index}, {value!r}, {applied!r}")
            count += 1
            value = applied
        return count, value

    def one(self, value: bytes, expected_servers: int, retry: bool) -> int:
        """Gets `value` committed on at least `expected_servers`; returns its index."""
        return self.run_process(self.one_process(value, expected_servers, retry))

    def one_process(self, value: bytes, expected_servers: int, retry: bool) -> Process:
        """`one` as a process, so that several can run at once (the lab's goroutines)."""
        started = self.now
        starts = 0
        while self.now - started < 10_000:
            index = -1
            for _ in range(self.n):
                starts = starts % self.n + 1
                node = NodeId(starts)
                if self.connected(node):
                    index1, _, ok = self.start(node, value)
                    if ok:
                        index = index1
                        break
            if index != -1:
                waited_from = self.now
                while self.now - waited_from < 2_000:
                    count, applied = self.n_committed(index)
                    if count > 0 and count >= expected_servers and applied == value:
                        return index
                    yield 20
                if not retry:
                    self.fail(f"one({value!r}) failed to reach agreement")
            else:
                yield 50
        self.fail(f"one({value!r}) failed to reach agreement")

    # --- processes: generators that yield how many virtual ms to sleep ---

    def run_process(self, process: Process) -> int:
        """Runs one process to completion, advancing virtual time as it sleeps."""
        try:
            while True:
                self.run_for(next(process))
        except StopIteration as finished:
            result: int = finished.value
            return result

    def spawn(self, process: Process) -> ProcessHandle:
        """Starts a process alongside the caller; `join` waits for it."""
        handle = ProcessHandle()

        def resume() -> None:
            try:
                delay = next(process)
            except StopIteration as finished:
                handle.done = True
                handle.result = finished.value
                return
            self.schedule(delay, resume)

        self.schedule(0, resume)
        return handle

    def join(self, handles: list[ProcessHandle], timeout_ms: int = 60_000) -> list[int]:
        if not self.run_until(lambda: all(h.done for h in handles), timeout_ms, step_ms=5):
            self.fail(f"processes still running after {timeout_ms} ms")
        return [h.result for h in handles]

    def wait(self, index: int, servers: int, start_term: int) -> bytes | None:
        delay = 10
        for _ in range(30):
            count, _ = self.n_committed(index)
            if count >= servers:
                break
            self.run_for(delay)
            if delay < 1000:
                delay *= 2
            if start_term > -1:
                for node in self.nodes.values():
                    if node.raft is not None and node.raft.term > start_term:
                        return None  # someone moved on; the caller retries
        count, value = self.n_committed(index)
        if count < servers:
            self.fail(f"only {count} decided for index {index}; wanted {servers}")
        return value

    def _tester_randrange(self, stop: int) -> int:
        return self._tester_rng.randrange(stop)

    def tester_random(self) -> int:
        """A large random integer from the tester's own seeded generator (lab: rand.Int())."""
        return self._tester_randrange(1 << 30)
