"""The transaction roles' metrics (`distlab_txn_*`), registered once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTCOMES = Counter("distlab_txn_outcomes_total",
                   "Transactions this node coordinated, by outcome and protocol.",
                   ["outcome", "protocol"])
RECORDS_FORCED = Counter("distlab_txn_records_forced_total",
                         "Transaction log records forced to the WAL, by kind.", ["kind"])
UNFINISHED = Gauge("distlab_txn_unfinished",
                   "Transactions not finished on this node, by role (a participant's are in "
                   "doubt or waiting for locks).", ["role"])
