"""What the chain's process tests share: the chain as its members report it, waiting for it
to become a given one, a writer that keeps what was acknowledged, and the old-epoch messages
the members refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from distlab.client import Indefinite
from distlab.client.chain import ChainClient, ReplicaStatus
from tests.support import scrape_metrics

MEND_SECONDS = 30.0


def newest_chain(rows: Iterable[ReplicaStatus]) -> tuple[int, tuple[int, ...], int]:
    """(epoch, chain, joining) of the newest configuration a live member reports."""
    live = [row for row in rows if row.health == "up" and row.chain]
    if not live:  # the master has not set the first chain up yet
        return 0, (), 0
    newest = max(live, key=lambda row: row.epoch)
    return newest.epoch, newest.chain, newest.joining


async def chain_of(client: ChainClient) -> tuple[int, tuple[int, ...], int]:
    """(epoch, chain, joining) of the newest configuration a live member reports now."""
    return newest_chain(await client.status(1.0))


async def wait_for_chain(client: ChainClient, wanted: tuple[int, ...]) -> int:
    """The epoch once the chain is `wanted`, no replica is joining, and each of its members
    reports that epoch."""
    deadline = time.monotonic() + MEND_SECONDS
    seen = None
    while time.monotonic() < deadline:
        # One round of status per poll: a frozen member costs its timeout once, so the
        # moment the chain mends is seen within about a second even while one is paused.
        rows = {row.id: row for row in await client.status(1.0)}
        epoch, chain, joining = seen = newest_chain(rows.values())
        if chain == wanted and not joining and all(
                rows[node].epoch == epoch for node in wanted):
            return epoch
        await asyncio.sleep(0.2)
    raise AssertionError(f"the chain did not become {wanted} within {MEND_SECONDS:g} s: "
                         f"{seen}")


class ChainWriter:
    """Writes w0, w1, ... until stopped; keeps every acknowledged write (a write whose outcome
    is unknown is not checked)."""

    def __init__(self, client: ChainClient) -> None:
        self._client = client
        self.acknowledged: dict[bytes, bytes] = {}
        self.last_seq = 0
        self._stop = asyncio.Event()
        self._progress = asyncio.Event()
        self._target = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def wait_for_more(self, count: int, what: str) -> None:
        """Return once `count` more writes than now were acknowledged."""
        self._target = len(self.acknowledged) + count
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), MEND_SECONDS)
        except TimeoutError:
            raise AssertionError(f"writes stopped {what}") from None

    async def _write(self) -> None:
        index = 0
        while not self._stop.is_set():
            key, value = f"w{index}".encode(), f"v{index}".encode()
            index += 1
            try:
                seq = await self._client.put(key, value, timeout=MEND_SECONDS)
            except Indefinite:
                continue
            self.acknowledged[key] = value
            self.last_seq = max(self.last_seq, seq)
            if len(self.acknowledged) >= self._target:
                self._progress.set()


def stale_refused(metrics_address: object) -> dict[str, float]:
    """What the node serving metrics at `metrics_address` (host:port) refused as of an older
    epoch, by sender."""
    prefix = "distlab_chain_stale_messages_refused_total{sender="
    return {name[len(prefix):-1]: value for name, value in scrape_metrics(metrics_address).items()
            if name.startswith(prefix)}


def stale_involving(replica: int, metrics: Mapping[int, object]
                    ) -> dict[tuple[int, str], float]:
    """The old-epoch refusals of the nodes of `metrics` (node -> its metrics address), by
    (refusing node, sender), of messages to or from `replica`."""
    found: dict[tuple[int, str], float] = {}
    for node, address in metrics.items():
        for sender, count in stale_refused(address).items():
            if node == replica or sender == str(replica):
                found[(node, sender)] = count
    return found
