"""Trailing metadata keys and values of the client-facing services (see kv.proto).

`error-reason` tells apart failures that share a status code.
"""

ERROR_REASON = "error-reason"
LEADER_ID = "leader-id"
LEADER_ADDRESS = "leader-address"
# The replicated group a refusal concerns: a node leads some groups and follows in others.
GROUP = "group"

REASON_NOT_LEADER = "not-leader"
REASON_OUTCOME_UNKNOWN = "outcome-unknown"
REASON_SESSION_EXPIRED = "session-expired"
REASON_STALE_SEQUENCE = "stale-sequence"
REASON_VALUE_TOO_LARGE = "value-too-large"
REASON_TIMED_OUT = "timed-out"
