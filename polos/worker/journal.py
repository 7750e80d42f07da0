"""The replay rule (design.md rule 1): within one attempt each step key is taken once, in call
order; a key with a record returns the record instead of running again."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from polos import protocol
from polos.model import StepKind
from polos.sdk.errors import DuplicateStepKeyError, InvalidStepKeyError
from polos.sdk.step import StepSlot


class Journal:
    def __init__(
        self, workflow_id: str, execution_id: str, entries: Sequence[protocol.JournalEntry]
    ) -> None:
        self._workflow_id = workflow_id
        self._execution_id = execution_id
        # A pending entry (a waiting step not yet resolved) is not an outcome: the step
        # submits its children again (idempotently) and waits.
        self._recorded = {e.key: e for e in entries if e.status != "pending"}
        # The highest event sequence consumed per topic (wait_for_event results).
        self._consumed: dict[str, int] = {}
        for e in self._recorded.values():
            if e.kind == StepKind.WAIT_EVENT.value and e.status == "completed" and e.result:
                event = orjson.loads(e.result)
                topic, seq = event.get("topic"), event.get("sequence_id")
                if isinstance(topic, str) and isinstance(seq, int):
                    self._consumed[topic] = max(seq, self._consumed.get(topic, 0))
        self._taken: set[str] = set()
        self._next_position = 0

    def consumed_up_to(self, topic: str) -> int | None:
        return self._consumed.get(topic)

    def take(self, step_key: str, kind: StepKind) -> StepSlot:
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
        if step_key in self._taken:
            raise DuplicateStepKeyError(
                f"step key {step_key!r} is used twice in one execution of workflow "
                f"{self._workflow_id!r} ({self._execution_id}); keys must be unique within an "
                'execution (in loops, add the index: f"{key}_{i}")'
            )
        self._taken.add(step_key)
        position = self._next_position
        self._next_position += 1
        return StepSlot(step_key, kind, position, self._recorded.get(step_key))
