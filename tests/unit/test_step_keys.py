"""polos.worker.journal.Journal: the replay rule (design.md rule 1)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from polos import DuplicateStepKeyError, WorkflowDivergenceError, protocol
from polos.model import StepKind
from polos.sdk.errors import InvalidStepKeyError
from polos.worker.journal import Journal

WORKFLOW = "journal_test_wf"
EXECUTION = "3f2b1c4d-0000-4000-8000-000000000001"

Status = Literal["completed", "failed", "pending"]


def _entry(key: str, status: Status = "completed", result: str | None = "1", **extra: Any) -> Any:
    return protocol.JournalEntry(
        key=key, kind=extra.pop("kind", "run"), status=status, result=result, **extra
    )


def test_a_key_taken_twice_in_one_attempt_raises() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    journal.take("fetch", StepKind.RUN)
    with pytest.raises(DuplicateStepKeyError) as raised:
        journal.take("fetch", StepKind.RUN)
    message = str(raised.value)
    assert "'fetch'" in message
    assert repr(WORKFLOW) in message
    assert EXECUTION in message


def test_a_duplicate_is_refused_whatever_the_kind() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    journal.take("k", StepKind.RUN)
    with pytest.raises(DuplicateStepKeyError):
        journal.take("k", StepKind.UUID)


def test_a_duplicate_of_a_recorded_key_raises_too() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [_entry("done")])
    assert journal.take("done", StepKind.RUN).recorded is not None
    with pytest.raises(DuplicateStepKeyError, match="'done'"):
        journal.take("done", StepKind.RUN)


def test_a_refused_duplicate_does_not_use_up_a_position() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    assert journal.take("a", StepKind.RUN).position == 0
    with pytest.raises(DuplicateStepKeyError):
        journal.take("a", StepKind.RUN)
    assert journal.take("b", StepKind.RUN).position == 1


def test_each_attempt_starts_with_no_key_taken() -> None:
    entries = [_entry("a")]
    first = Journal(WORKFLOW, EXECUTION, entries)
    first.take("a", StepKind.RUN)
    second = Journal(WORKFLOW, EXECUTION, entries)
    assert second.take("a", StepKind.RUN).recorded == entries[0]


@pytest.mark.parametrize("bad", ["", None, 3, b"key", ["k"]], ids=repr)
def test_empty_or_non_string_keys_are_rejected(bad: Any) -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    with pytest.raises(InvalidStepKeyError) as raised:
        journal.take(bad, StepKind.RUN)
    assert repr(WORKFLOW) in str(raised.value)
    # The rejected call took nothing.
    assert journal.take("first", StepKind.RUN).position == 0


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"], ids=["nul", "lone-surrogate"])
def test_keys_that_cannot_be_stored_are_rejected(bad: str) -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    with pytest.raises(InvalidStepKeyError) as raised:
        journal.take(bad, StepKind.RUN)
    assert repr(WORKFLOW) in str(raised.value)


def test_overlong_keys_are_rejected() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    journal.take("k" * protocol.MAX_STEP_KEY_LENGTH, StepKind.RUN)
    with pytest.raises(ValueError, match=repr(WORKFLOW)):
        journal.take("k" * (protocol.MAX_STEP_KEY_LENGTH + 1), StepKind.RUN)


def test_recorded_entries_are_returned_for_recorded_keys() -> None:
    a = _entry("a", result='{"x":1}', output_schema="mod:Model")
    failed = _entry(
        "b",
        position=1,
        status="failed",
        result=None,
        error=protocol.StoredError(type="ValueError", message="bad input"),
    )
    journal = Journal(WORKFLOW, EXECUTION, [a, failed])
    slot_a = journal.take("a", StepKind.RUN)
    assert slot_a.key == "a"
    assert slot_a.kind is StepKind.RUN
    assert slot_a.recorded == a
    slot_b = journal.take("b", StepKind.RUN)
    assert slot_b.recorded == failed  # a failed step is an outcome too: it is not run again
    assert journal.take("new", StepKind.RUN).recorded is None


@pytest.mark.parametrize("text", ["0", "0.0", "false", '""', "[]", "{}", "null"])
def test_recorded_falsy_results_count_as_recorded(text: str) -> None:
    entry = _entry("falsy", result=text)
    journal = Journal(WORKFLOW, EXECUTION, [entry])
    slot = journal.take("falsy", StepKind.RUN)
    assert slot.recorded is not None
    assert slot.recorded.result == text


def test_positions_increase_in_call_order() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [_entry("second", position=1), _entry("first")])
    keys = ["first", "second", "third", "x", "a"]
    positions = [journal.take(k, StepKind.RUN).position for k in keys]
    assert positions == [0, 1, 2, 3, 4]


def test_pending_entries_are_not_treated_as_recorded() -> None:
    pending = _entry("reviews", status="pending", result=None, kind="batch_invoke_and_wait")
    journal = Journal(WORKFLOW, EXECUTION, [pending])
    slot = journal.take("reviews", StepKind.BATCH_WAIT)
    assert slot.recorded is None
    assert slot.position == 0
    # ...but its key is still taken for this attempt.
    with pytest.raises(DuplicateStepKeyError):
        journal.take("reviews", StepKind.BATCH_WAIT)


# ---------------------------------------------------------------- divergence and patched


def _recorded(*steps: tuple[str, str]) -> list[Any]:
    return [_entry(key, kind=kind, position=i, result="{}") for i, (key, kind) in enumerate(steps)]


def test_the_same_steps_in_the_same_order_replay_cleanly() -> None:
    journal = Journal(WORKFLOW, EXECUTION, _recorded(("a", "run"), ("w", "wait")))
    assert journal.take("a", StepKind.RUN).recorded is not None
    assert journal.take("w", StepKind.WAIT).recorded is not None
    assert journal.take("beyond", StepKind.RUN).recorded is None  # past the journal: new
    assert journal.divergence is None


@pytest.mark.parametrize(
    ("key", "kind", "what"),
    [
        (
            "inserted",
            StepKind.RUN,
            "recorded step 'w' (wait) there, the code asked for step 'inserted' (run)",
        ),
        ("w", StepKind.RUN, "recorded step 'w' (wait) there, the code asked for step 'w' (run)"),
    ],
)
def test_another_step_at_a_recorded_position_diverges(key: str, kind: StepKind, what: str) -> None:
    journal = Journal(WORKFLOW, EXECUTION, _recorded(("a", "run"), ("w", "wait")))
    journal.take("a", StepKind.RUN)
    with pytest.raises(WorkflowDivergenceError) as raised:
        journal.take(key, kind)
    error = raised.value
    assert what in str(error)
    assert f"workflow {WORKFLOW!r}" in str(error) and "position 1" in str(error)
    assert (error.position, error.recorded, error.requested) == (1, ("w", "wait"), (key, kind))
    # Sticky: the attempt fails with it even if user code caught it and went on.
    assert journal.divergence is error
    with pytest.raises(WorkflowDivergenceError):
        journal.take("anything", StepKind.RUN)


def test_a_recorded_step_asked_for_at_another_position_diverges() -> None:
    # Position 1 never got a record (e.g. a concurrent step cut short by a crash).
    journal = Journal(WORKFLOW, EXECUTION, [_entry("a"), _entry("c", position=2)])
    journal.take("a", StepKind.RUN)
    with pytest.raises(WorkflowDivergenceError, match="recorded at position 2"):
        journal.take("c", StepKind.RUN)


def test_patched_is_true_for_new_executions_and_false_for_old_ones() -> None:
    fresh = Journal(WORKFLOW, EXECUTION, [])
    slot, value, new = fresh.patched("change")
    assert (slot.key, slot.kind, slot.position, value, new) == (
        "patched:change",
        StepKind.PATCHED,
        0,
        True,
        True,
    )
    assert fresh.patched("change")[1:] == (True, False)  # asked again: same answer, no record
    assert fresh.take("next", StepKind.RUN).position == 0  # markers take no position

    old = Journal(WORKFLOW, EXECUTION, _recorded(("a", "run"), ("w", "wait_for_event")))
    old.take("a", StepKind.RUN)
    assert old.patched("change")[1:] == (False, True)  # recorded past this point: old path
    assert old.take("w", StepKind.WAIT_EVENT).recorded is not None
    assert old.divergence is None

    # An old execution that had not got this far takes the new path.
    short = Journal(WORKFLOW, EXECUTION, _recorded(("a", "run")))
    short.take("a", StepKind.RUN)
    assert short.patched("change")[1] is True


def test_a_recorded_marker_keeps_its_answer() -> None:
    marker = _entry("patched:change", kind="patched", result="false", position=1)
    journal = Journal(WORKFLOW, EXECUTION, [_entry("a"), marker])
    journal.take("a", StepKind.RUN)
    assert journal.patched("change")[1:] == (False, False)


def test_marker_keys_are_reserved() -> None:
    journal = Journal(WORKFLOW, EXECUTION, [])
    with pytest.raises(InvalidStepKeyError, match="reserved"):
        journal.take("patched:x", StepKind.RUN)
    with pytest.raises(InvalidStepKeyError):
        journal.patched("")
