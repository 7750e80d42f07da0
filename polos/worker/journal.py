"""The replay rule (design.md rule 1): within one attempt each step key is taken once, in call
order; a key with a record returns the record instead of running again.

Divergence: the journal holds each step's key, kind and position (its place in the call
order). While recorded steps remain, the code must ask for the same steps in the same order;
a mismatch fails the execution with WorkflowDivergenceError (not retried) instead of mixing
old and new behaviour. `ctx.step.patched(change_id)` markers live outside the call order: they
take no position, so that putting a change behind one replays old executions cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from polos import protocol
from polos.model import StepKind
from polos.sdk.errors import DuplicateStepKeyError, InvalidStepKeyError, WorkflowDivergenceError
from polos.sdk.step import StepSlot

PATCH_PREFIX = "patched:"


class Journal:
    def __init__(
        self, workflow_id: str, execution_id: str, entries: Sequence[protocol.JournalEntry]
    ) -> None:
        self._workflow_id = workflow_id
        self._execution_id = execution_id
        # A pending entry (a waiting step not yet resolved) is not an outcome: the step
        # submits its children again (idempotently) and waits.
        self._recorded = {e.key: e for e in entries if e.status != "pending"}
        # Every step in the call order, pending ones included (markers are not in it).
        ordered = [e for e in entries if e.kind != StepKind.PATCHED.value]
        self._by_position = {e.position: e for e in ordered}
        self._by_key = {e.key: e for e in ordered}
        self._last_position = max(self._by_position, default=-1)
        # The highest event sequence consumed per topic (wait_for_event results).
        self._consumed: dict[str, int] = {}
        for e in self._recorded.values():
            if e.kind == StepKind.WAIT_EVENT.value and e.status == "completed" and e.result:
                event = orjson.loads(e.result)
                topic, seq = event.get("topic"), event.get("sequence_id")
                if isinstance(topic, str) and isinstance(seq, int):
                    self._consumed[topic] = max(seq, self._consumed.get(topic, 0))
        self._taken: set[str] = set()
        self._markers: dict[str, bool] = {}
        self._next_position = 0
        # Set by the first mismatch; the attempt fails with it even if user code caught it.
        self.divergence: WorkflowDivergenceError | None = None

    def consumed_up_to(self, topic: str) -> int | None:
        return self._consumed.get(topic)

    def _check_key(self, step_key: str) -> None:
        if not isinstance(step_key, str) or not step_key:
            raise InvalidStepKeyError(
                f"workflow {self._workflow_id!r}: a step key must be a non-empty string, "
                f"not {step_key!r}"
            )
        if len(step_key) > protocol.MAX_STEP_KEY_LENGTH:
            raise InvalidStepKeyError(
                f"workflow {self._workflow_id!r}: step key {step_key[:40]!r}... is longer than "
                f"{protocol.MAX_STEP_KEY_LENGTH} characters"
            )
        try:
            protocol.check_text(step_key)
        except ValueError as exc:
            raise InvalidStepKeyError(
                f"workflow {self._workflow_id!r}: step key {step_key!r} {exc}"
            ) from None

    def take(self, step_key: str, kind: StepKind) -> StepSlot:
        if self.divergence is not None:
            raise self.divergence
        self._check_key(step_key)
        if step_key.startswith(PATCH_PREFIX):
            raise InvalidStepKeyError(
                f"workflow {self._workflow_id!r}: step keys starting with {PATCH_PREFIX!r} are "
                f"reserved for ctx.step.patched markers (got {step_key!r})"
            )
        if step_key in self._taken:
            raise DuplicateStepKeyError(
                f"step key {step_key!r} is used twice in one execution of workflow "
                f"{self._workflow_id!r} ({self._execution_id}); keys must be unique within an "
                'execution (in loops, add the index: f"{key}_{i}")'
            )
        self._taken.add(step_key)
        position = self._next_position
        self._next_position += 1
        self._check_order(position, step_key, kind)
        return StepSlot(step_key, kind, position, self._recorded.get(step_key))

    def _check_order(self, position: int, step_key: str, kind: StepKind) -> None:
        here = self._by_position.get(position)
        if here is not None and (here.key != step_key or here.kind != kind.value):
            self._diverge(
                position,
                here,
                step_key,
                kind,
                f"the journal recorded step {here.key!r} ({here.kind}) there, the code asked "
                f"for step {step_key!r} ({kind.value})",
            )
        same_key = self._by_key.get(step_key)
        if same_key is not None and same_key.position != position:
            self._diverge(
                position,
                same_key,
                step_key,
                kind,
                f"the code asked for step {step_key!r} ({kind.value}), which the journal "
                f"recorded at position {same_key.position} ({same_key.kind})",
            )

    def _diverge(
        self,
        position: int,
        recorded: protocol.JournalEntry,
        step_key: str,
        kind: StepKind,
        what: str,
    ) -> None:
        self.divergence = WorkflowDivergenceError(
            f"workflow {self._workflow_id!r} (execution {self._execution_id}) diverged from its "
            f"journal at step position {position}: {what}. Its code changed while this "
            "execution was running; put the change behind `await ctx.step.patched(...)` to "
            "keep older executions on the old path",
            workflow_id=self._workflow_id,
            position=position,
            recorded=(recorded.key, recorded.kind),
            requested=(step_key, kind.value),
        )
        raise self.divergence

    def patched(self, change_id: str) -> tuple[StepSlot, bool, bool]:
        """The marker of `change_id`: (its slot, whether this execution takes the new path,
        whether the marker is new and must be recorded).

        An execution takes the new path when it reaches the marker with nothing recorded at or
        after this point of its call order (it is new, or it has not got this far before);
        otherwise it was recorded by older code: the old path. The answer is recorded, so
        every later replay gets the same one."""
        if self.divergence is not None:
            raise self.divergence
        if not isinstance(change_id, str) or not change_id:
            raise InvalidStepKeyError(
                f"workflow {self._workflow_id!r}: a change id must be a non-empty string, "
                f"not {change_id!r}"
            )
        key = PATCH_PREFIX + change_id
        self._check_key(key)
        slot = StepSlot(key, StepKind.PATCHED, self._next_position, self._recorded.get(key))
        if key in self._markers:
            return slot, self._markers[key], False
        if slot.recorded is not None:
            value = slot.recorded.result == "true"
            new = False
        else:
            value = self._last_position < self._next_position
            new = True
        self._markers[key] = value
        return slot, value, new
