"""The coordinator's and the participant's states, and the transitions between them, as data.

A transaction moves only along these tables (h11's style): `advance_state` refuses any other
move, so a handler that would take a transaction somewhere the protocol does not allow fails
loudly instead of corrupting the outcome. Duplicated and late messages do not move a
transaction at all: the handlers answer them from the state it is in.
"""

from __future__ import annotations

import enum


class ParticipantState(enum.Enum):
    LOCKING = "locking"            # waiting for locks (wait-die: it is the older)
    PREPARED = "prepared"          # voted yes; PREPARED is on disk with writes and locks
    PRECOMMITTED = "precommitted"  # 3PC: accepted commit in some round
    PREABORTED = "preaborted"      # 3PC: accepted a terminator's abort in some round
    COMMITTED = "committed"
    ABORTED = "aborted"


class ParticipantEvent(enum.Enum):
    VOTE_YES = "vote yes"
    VOTE_NO = "vote no"            # refused, lost wait-die, or gave up waiting for locks
    ACCEPT_COMMIT = "accept commit"
    ACCEPT_ABORT = "accept abort"
    COMMIT = "commit"
    ABORT = "abort"


P = ParticipantState
PE = ParticipantEvent
UNDECIDED_AFTER_YES = (P.PREPARED, P.PRECOMMITTED, P.PREABORTED)

PARTICIPANT_TRANSITIONS: dict[tuple[ParticipantState, ParticipantEvent], ParticipantState] = {
    (P.LOCKING, PE.VOTE_YES): P.PREPARED,
    (P.LOCKING, PE.VOTE_NO): P.ABORTED,
    # An abort may reach a participant still waiting for its locks.
    (P.LOCKING, PE.ABORT): P.ABORTED,
    **{(state, PE.ACCEPT_COMMIT): P.PRECOMMITTED for state in UNDECIDED_AFTER_YES},
    **{(state, PE.ACCEPT_ABORT): P.PREABORTED for state in UNDECIDED_AFTER_YES},
    **{(state, PE.COMMIT): P.COMMITTED for state in UNDECIDED_AFTER_YES},
    **{(state, PE.ABORT): P.ABORTED for state in UNDECIDED_AFTER_YES},
}


class CoordinatorState(enum.Enum):
    COLLECTING = "collecting"        # PREPARE sent, votes coming in
    PRECOMMITTING = "precommitting"  # 3PC: every vote yes, PRE-COMMIT out, acks coming in
    IN_DOUBT = "in-doubt"            # 3PC: PRE-COMMIT acks timed out; the participants decide
    COMMITTING = "committing"        # COMMIT on disk and out, acknowledgements coming in
    DONE = "done"                    # END written (or aborted): forgotten


class CoordinatorEvent(enum.Enum):
    ALL_YES = "every vote yes"
    ABORT = "abort"
    ALL_PRECOMMITTED = "every participant precommitted"
    PRECOMMIT_TIMEOUT = "pre-commit acknowledgements timed out"
    LEARN_COMMIT = "learn commit"
    LEARN_ABORT = "learn abort"
    ALL_ACKED = "every participant acknowledged"
    ALL_READ = "every snapshot read answered"  # a read-only transaction: nothing to decide


C = CoordinatorState
CE = CoordinatorEvent

COORDINATOR_TRANSITIONS: dict[tuple[CoordinatorState, CoordinatorEvent], CoordinatorState] = {
    # 2PC goes straight to COMMITTING; 3PC the table below through PRECOMMITTING.
    (C.COLLECTING, CE.ALL_YES): C.COMMITTING,
    (C.COLLECTING, CE.ABORT): C.DONE,
    (C.COLLECTING, CE.LEARN_ABORT): C.DONE,
    (C.COLLECTING, CE.ALL_READ): C.DONE,
    (C.PRECOMMITTING, CE.ALL_PRECOMMITTED): C.COMMITTING,
    (C.PRECOMMITTING, CE.PRECOMMIT_TIMEOUT): C.IN_DOUBT,
    (C.PRECOMMITTING, CE.LEARN_COMMIT): C.DONE,
    (C.PRECOMMITTING, CE.LEARN_ABORT): C.DONE,
    (C.IN_DOUBT, CE.LEARN_COMMIT): C.DONE,
    (C.IN_DOUBT, CE.LEARN_ABORT): C.DONE,
    (C.COMMITTING, CE.ALL_ACKED): C.DONE,
}
THREE_PHASE_ALL_YES = C.PRECOMMITTING


class IllegalTransition(AssertionError):
    """A handler tried a move the protocol's table does not hold."""


def next_participant_state(state: ParticipantState, event: ParticipantEvent
                           ) -> ParticipantState:
    try:
        return PARTICIPANT_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"participant: no transition from {state.value} on "
                                f"{event.value}") from None


def next_coordinator_state(state: CoordinatorState, event: CoordinatorEvent,
                           three_phase: bool = False) -> CoordinatorState:
    if three_phase and (state, event) == (C.COLLECTING, CE.ALL_YES):
        return THREE_PHASE_ALL_YES
    try:
        return COORDINATOR_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"coordinator: no transition from {state.value} on "
                                f"{event.value}") from None
