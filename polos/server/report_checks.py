"""What a worker's report must be before it is applied: known step kinds, pending steps only
of the waiting kinds (with what they wait for), a suspension on a pending step of the same
report, and every JSON value well formed and under the size limit (413 / 422 answers naming
the item). Split from routes/workers.py (design.md: modules under 500 lines)."""

from __future__ import annotations

from polos import codec, protocol
from polos.model import EVENT_WAIT_KINDS, WAITING_STEP_KINDS, StepKind
from polos.server.http import ApiError

_STEP_KINDS = {k.value for k in StepKind}
_WAITING_KINDS = {k.value for k in WAITING_STEP_KINDS}
_EVENT_KINDS = {k.value for k in EVENT_WAIT_KINDS}


def _check_json(text: str | None, what: str, limit: int) -> None:
    if text is None:
        return
    if len(text) > limit and len(text.encode()) > limit:
        raise ApiError(413, "value_too_large", f"{what} is larger than {limit} bytes")
    try:
        codec.check_json(text)
    except codec.DecodeError as exc:
        raise ApiError(422, "invalid_value", f"{what}: {exc}") from None


def check_report_items(items: list[protocol.ReportItem], limit: int) -> None:
    """Raise the ApiError of the first thing wrong in `items`."""
    for i, item in enumerate(items):
        where = f"items[{i}] ({item.execution_id})"
        pending: dict[str, str] = {}
        for step in item.steps:
            if step.kind not in _STEP_KINDS:
                raise ApiError(422, "invalid_request", f"{where}: unknown step kind {step.kind!r}")
            if step.status == "pending":
                if step.kind not in _WAITING_KINDS:
                    raise ApiError(
                        422, "invalid_request", f"{where}: a {step.kind} step cannot be pending"
                    )
                if (
                    step.kind == StepKind.WAIT
                    and step.wait_seconds is None
                    and (step.wait_until is None)
                ):
                    raise ApiError(
                        422,
                        "invalid_request",
                        f"{where}: a wait step needs wait_seconds or wait_until",
                    )
                if step.kind in _EVENT_KINDS and step.wait_topic is None:
                    raise ApiError(
                        422, "invalid_request", f"{where}: a {step.kind} step needs wait_topic"
                    )
                pending[step.key] = step.kind
            _check_json(step.result, f"{where} step {step.key!r} result", limit)
        for event in item.events:
            _check_json(event.data, f"{where} event on {event.topic!r}", limit)
        for child in item.children:
            _check_json(child.payload, f"{where} child {child.index} payload", limit)
            _check_json(child.initial_state, f"{where} child {child.index} state", limit)
        outcome = item.outcome
        if isinstance(outcome, protocol.CompleteOutcome):
            _check_json(outcome.result, f"{where} result", limit)
        if isinstance(outcome, protocol.SuspendOutcome) and outcome.step_key not in pending:
            raise ApiError(
                422,
                "invalid_request",
                f"{where}: suspends on step {outcome.step_key!r}, which is not a pending "
                "waiting step of the same report",
            )
        if outcome is not None and not isinstance(outcome, protocol.ReleaseOutcome):
            _check_json(outcome.final_state, f"{where} state", limit)
