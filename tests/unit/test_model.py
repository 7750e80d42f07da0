"""polos.model: the execution state machine."""

from __future__ import annotations

import itertools

import pytest

from polos.model import (
    FINAL_STATUSES,
    ExecutionStatus,
    IllegalTransition,
    can_transition,
    check_transition,
)

S = ExecutionStatus

# The legal moves, written out here independently of polos.model.TRANSITIONS:
# running -> queued is a retry, an expired lease or a re-queue for replay; waiting -> queued is a
# wake-up; a waiting execution can be cancelled at once, a queued one before it starts.
LEGAL: set[tuple[ExecutionStatus, ExecutionStatus]] = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.QUEUED),
    (S.RUNNING, S.WAITING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.WAITING, S.QUEUED),
    (S.WAITING, S.CANCELLED),
}

ALL_PAIRS = list(itertools.product(ExecutionStatus, repeat=2))


def test_the_status_words_are_the_shared_vocabulary() -> None:
    assert [s.value for s in ExecutionStatus] == [
        "queued",
        "running",
        "waiting",
        "completed",
        "failed",
        "cancelled",
    ]
    assert ExecutionStatus("waiting") is S.WAITING
    assert f"{S.COMPLETED}" == "completed"  # a StrEnum formats as its word


def test_final_statuses() -> None:
    assert {S.COMPLETED, S.FAILED, S.CANCELLED} == FINAL_STATUSES
    assert [s for s in ExecutionStatus if s.is_final] == [S.COMPLETED, S.FAILED, S.CANCELLED]
    assert not any(s.is_final for s in (S.QUEUED, S.RUNNING, S.WAITING))


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL), ids=lambda s: s.value)
def test_legal_transitions_are_allowed(current: ExecutionStatus, target: ExecutionStatus) -> None:
    assert can_transition(current, target)
    check_transition(current, target)  # does not raise


ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=lambda s: s.value)
def test_other_transitions_raise(current: ExecutionStatus, target: ExecutionStatus) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition) as raised:
        check_transition(current, target)
    assert raised.value.current is current
    assert raised.value.target is target
    assert current.value in str(raised.value)
    assert target.value in str(raised.value)


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES), ids=lambda s: s.value)
def test_final_statuses_have_no_way_out(final: ExecutionStatus) -> None:
    for target in ExecutionStatus:
        assert not can_transition(final, target)
        with pytest.raises(IllegalTransition):
            check_transition(final, target)


def test_no_status_moves_to_itself() -> None:
    for status in ExecutionStatus:
        assert not can_transition(status, status)


def test_every_non_final_status_can_reach_a_final_status() -> None:
    reachable = {S.QUEUED}
    frontier = [S.QUEUED]
    while frontier:
        current = frontier.pop()
        for target in ExecutionStatus:
            if can_transition(current, target) and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(ExecutionStatus)
    for status in (S.QUEUED, S.RUNNING, S.WAITING):
        assert can_transition(status, S.CANCELLED)


def test_illegal_transition_message() -> None:
    assert str(IllegalTransition(S.COMPLETED, S.RUNNING)) == (
        "an execution cannot go from completed to running"
    )
