"""The chain as the tester's workload sees a store: `get` and `put` with a time budget, and
the client library's failures (`Definite`: it did not happen; `Indefinite`: it may have)."""

from __future__ import annotations

from collections.abc import Mapping

from distlab.client.chain import ChainClient
from distlab.core.ids import NodeId


class ChainStore:
    """Writes at the head; reads at the tail (`cr`) or at a random replica (`craq`)."""

    def __init__(self, members: Mapping[NodeId, str], read_mode: str,
                 operation_timeout: float) -> None:
        self._client = ChainClient(members)
        self._read_mode = read_mode
        self._operation_timeout = operation_timeout
        # The KV client's overrun accounting, which the chain client does not need: each of
        # its calls carries a gRPC deadline inside the operation's budget.
        self.overrun_calls = 0
        self.last_overrun: str | None = None

    async def get(self, key: str, budget: float | None = None) -> str | None:
        read = await self._client.get(key.encode(), self._read_mode,
                                      timeout=budget or self._operation_timeout)
        return None if read.value is None else read.value.decode()

    async def put(self, key: str, value: str, budget: float | None = None) -> None:
        await self._client.put(key.encode(), value.encode(),
                               timeout=budget or self._operation_timeout)

    async def close(self) -> None:
        await self._client.close()
