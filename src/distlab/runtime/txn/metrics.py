"""The transaction roles' metrics (`distlab_txn_*`), registered once per process.

`participant` tells a node's own participant ("node") from the participant of a consensus
group this node leads ("group-G").
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = Counter("distlab_txn_outcomes_total",
                   "Transactions coordinated here, by outcome, protocol and participant.",
                   ["outcome", "protocol", "participant"])
RECORDS_FORCED = Counter("distlab_txn_records_forced_total",
                         "Transaction records made durable (forced to the WAL, or applied "
                         "in the group's log), by kind.", ["kind", "participant"])
UNFINISHED = Gauge("distlab_txn_unfinished",
                   "Transactions not finished here, by role (a participant's are in doubt "
                   "or waiting for locks).", ["role", "participant"])
IN_DOUBT = Gauge("distlab_txn_in_doubt",
                 "Participant transactions that voted yes and do not know the outcome yet.",
                 ["participant"])
LOCK_WAITS = Counter("distlab_txn_lock_waits_total",
                     "Transactions that waited for a lock (wait-die: they were the older).",
                     ["participant"])
LOCK_DEATHS = Counter("distlab_txn_lock_deaths_total",
                      "Transactions that lost wait-die for a lock and aborted.",
                      ["participant"])
PHASE_SECONDS = Histogram(
    "distlab_txn_phase_seconds",
    "Coordinator phases: prepare (begin to decision, every vote in) and commit (decision to "
    "the last acknowledgement).", ["phase", "participant"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
