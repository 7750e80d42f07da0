"""Suspend/resume demo: start workflows that pause for input, answer them, read the results.

By default the answers are scripted (approve, fill the form with sample values, every reviewer
approves), so the demo runs unattended. With --interactive each answer is asked with input()
(Enter takes the value in brackets).

Run with (a server and `python worker.py` running):
    python main.py                 # scripted answers
    python main.py --interactive   # type the answers
"""

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable
from typing import Any

from dotenv import load_dotenv
from workflows import (
    ApprovalRequest,
    DocumentReviewPayload,
    MultiStepFormPayload,
    approval_workflow,
    document_review,
    multi_step_form,
)

from polos import ExecutionHandle, PolosClient, events

load_dotenv()


class CheckFailed(Exception):
    """A demo's outcome is not the expected one."""


def expect(what: str, actual: object, expected: object) -> None:
    """Stop the demos (main.py then exits with status 1) when `actual` is not `expected`."""
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


# Answers a suspend: (step key, the data the workflow suspended with) -> the resume data.
Responder = Callable[[str, dict[str, Any]], dict[str, Any]]


def print_header(title: str) -> None:
    print("\n" + "=" * 60)
    print(title)
    print("=" * 60)


def print_section(title: str) -> None:
    print(f"\n--- {title} ---")


class Answers:
    """Asks with input() in interactive mode; otherwise prints the question and the scripted
    answer."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def text(self, prompt: str, default: str) -> str:
        if self.interactive:
            return input(f"{prompt} [{default}]: ").strip() or default
        print(f"{prompt} [{default}]: {default}")
        return default

    def yes_no(self, prompt: str, default: bool) -> bool:
        shown = "y" if default else "n"
        if not self.interactive:
            print(f"{prompt} (y/n) [{shown}]: {shown}")
            return default
        while True:
            answer = input(f"{prompt} (y/n) [{shown}]: ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            print("Please enter 'y' or 'n'")


async def answer_suspends(
    client: PolosClient, handle: ExecutionHandle, respond: Responder, expected_keys: list[str]
) -> dict[str, Any]:
    """Follow the run's events until it finishes, answering each `suspend_{key}` event with
    `client.resume(...)`; then return the execution (its result rebuilt into its model).
    The suspends must be those of `expected_keys`, in that order, and the run must complete.

    One stream for the whole run: it starts at the run's first event, so a suspend that
    happened before the stream opened is not missed, and ends after `workflow_finish`.
    """
    assert handle.root_workflow_id is not None
    seen: list[str] = []
    async for event in events.stream_workflow(client, handle.root_workflow_id, handle.id):
        event_type = event.event_type or ""
        if not event_type.startswith("suspend_"):
            continue
        step_key = event_type.removeprefix("suspend_")
        seen.append(step_key)
        execution = await client.get_execution(handle.id)
        print(f"\nReceived {event_type} (execution status: {execution['status']})")
        resume_data = respond(step_key, event.data)
        await client.resume(
            suspend_workflow_id=handle.root_workflow_id,
            suspend_execution_id=handle.id,
            suspend_step_key=step_key,
            data=resume_data,
        )
        print(f"Resume event published for '{step_key}'!")
    # The stream ended with workflow_finish: the execution is final by now.
    execution = await handle.get(client)
    if execution["status"] != "completed":
        report_failure(execution)
    expect("the suspends answered", seen, expected_keys)
    return execution


def report_failure(execution: dict[str, Any]) -> None:
    print(f"Final status: {execution.get('status')}")
    if execution.get("error"):
        print(f"Error: {execution['error'].get('message')}")
    raise CheckFailed(f"execution {execution.get('id')} ended {execution.get('status')}")


# ----------------------------------------------------------------------------- approval


async def run_approval_workflow(client: PolosClient, ask: Answers) -> None:
    print_header("Approval Workflow Demo")

    print("\nEnter approval request details:")
    request_id = ask.text("  Request ID", "REQ-001")
    requester = ask.text("  Requester email", "alice@example.com")
    description = ask.text("  Description", "Purchase new equipment")
    amount = float(ask.text("  Amount", "1500.00"))

    print_section("Starting workflow")
    handle = await approval_workflow.invoke(
        client,
        ApprovalRequest(
            request_id=request_id, requester=requester, description=description, amount=amount
        ),
    )
    print(f"Execution ID: {handle.id}")
    print("Workflow will suspend and wait for approval...")

    answers: dict[str, Any] = {}

    def decide(step_key: str, data: dict[str, Any]) -> dict[str, Any]:
        expect("the request the workflow suspended with", data.get("request_id"), request_id)
        print(f"  Request ID: {data.get('request_id')}")
        print(f"  Requester: {data.get('requester')}")
        print(f"  Description: {data.get('description')}")
        print(f"  Amount: ${data.get('amount', 0):.2f}")
        print(f"  Message: {data.get('message')}")
        print_section("Approval Decision")
        approved = ask.yes_no("Do you approve this request?", True)
        approver = ask.text("Your email", "manager@example.com")
        comments = ask.text("Comments", "Within budget") or None
        print_section("Resuming workflow")
        answers.update(approved=approved, approver=approver, comments=comments)
        return answers

    execution = await answer_suspends(client, handle, decide, ["await_approval"])
    result = execution["result"]  # an ApprovalResult
    print_section("Workflow Completed")
    print(f"  Status: {result.status}")
    print(f"  Approved: {result.approved}")
    print(f"  Approver: {result.approver}")
    if result.comments:
        print(f"  Comments: {result.comments}")
    expect("request ID", result.request_id, request_id)
    expect("status", result.status, "approved" if answers["approved"] else "rejected")
    expect(
        "decision",
        (result.approved, result.approver, result.comments),
        (answers["approved"], answers["approver"], answers["comments"]),
    )


# ----------------------------------------------------------------------------- form


async def run_multi_step_form(client: PolosClient, ask: Answers) -> None:
    print_header("Multi-Step Form Workflow Demo")

    form_id = ask.text("\nForm ID", "FORM-001")
    print_section("Starting workflow")
    handle = await multi_step_form.invoke(client, MultiStepFormPayload(form_id=form_id))
    print(f"Execution ID: {handle.id}")

    pages: dict[str, dict[str, Any]] = {}

    def fill(step_key: str, data: dict[str, Any]) -> dict[str, Any]:
        print(f"  Step {data.get('step')} of {data.get('total_steps')}: {data.get('prompt')}")
        if step_key == "personal_info":
            page: dict[str, Any] = {
                "first_name": ask.text("  First name", "John"),
                "last_name": ask.text("  Last name", "Doe"),
                "email": ask.text("  Email", "john.doe@example.com"),
            }
        elif step_key == "address_info":
            page = {
                "street": ask.text("  Street", "123 Main St"),
                "city": ask.text("  City", "San Francisco"),
                "country": ask.text("  Country", "USA"),
            }
        elif step_key == "preferences":
            page = {
                "newsletter": ask.yes_no("  Subscribe to newsletter?", True),
                "notifications": ask.yes_no("  Enable notifications?", False),
            }
        else:
            raise ValueError(f"unexpected suspend {step_key!r}")
        pages[step_key] = page
        return page

    execution = await answer_suspends(
        client, handle, fill, ["personal_info", "address_info", "preferences"]
    )
    result = execution["result"]  # a MultiStepFormResult
    print_section("Form Completed")
    print(f"  Form ID: {result.form_id}")
    print(f"  Status: {result.status}")
    print(f"  Fields collected: {result.fields_count}")
    if result.personal_info:
        pi = result.personal_info
        print(f"  Name: {pi.first_name} {pi.last_name} <{pi.email}>")
    if result.address_info:
        ai = result.address_info
        print(f"  Address: {ai.street}, {ai.city}, {ai.country}")
    if result.preferences:
        pref = result.preferences
        print(f"  Newsletter: {pref.newsletter}, notifications: {pref.notifications}")
    expect("form", (result.form_id, result.status, result.fields_count), (form_id, "completed", 8))
    for key in ("personal_info", "address_info", "preferences"):
        page = getattr(result, key)
        expect(f"form page {key}", page and page.model_dump(), pages[key])


# ----------------------------------------------------------------------------- review


async def run_document_review(client: PolosClient, ask: Answers) -> None:
    print_header("Document Review Workflow Demo")

    print("\nEnter document details:")
    document_id = ask.text("  Document ID", "DOC-001")
    document_title = ask.text("  Document title", "Q4 Report")
    reviewers_text = ask.text("  Reviewers (comma-separated)", "alice,bob")
    reviewers = [r.strip() for r in reviewers_text.split(",") if r.strip()]

    print_section("Starting workflow")
    print(f"Starting document review for: {document_title}")
    print(f"Reviewers: {', '.join(reviewers)}")
    handle = await document_review.invoke(
        client,
        DocumentReviewPayload(
            document_id=document_id, document_title=document_title, reviewers=reviewers
        ),
    )
    print(f"Execution ID: {handle.id}")

    feedback: dict[str, dict[str, Any]] = {}

    def review(step_key: str, data: dict[str, Any]) -> dict[str, Any]:
        reviewer = data.get("reviewer")
        print(f"  Reviewer {data.get('reviewer_number')} of {data.get('total_reviewers')}")
        print(f"  {data.get('prompt')}")
        print(f"\n[Acting as {reviewer}]")
        approved = ask.yes_no(f"  Does {reviewer} approve?", True)
        comments = ask.text("  Comments", f"Reviewed by {reviewer}") or None
        rating = int(ask.text("  Rating (1-5)", "4"))
        feedback[step_key] = {"approved": approved, "comments": comments, "rating": rating}
        return feedback[step_key]

    keys = [f"review_{i}_{reviewer}" for i, reviewer in enumerate(reviewers)]
    execution = await answer_suspends(client, handle, review, keys)
    result = execution["result"]  # a DocumentReviewResult
    print_section("Review Completed")
    print(f"  Document: {result.document_title}")
    print(f"  Status: {result.status}")
    print(f"  All Approved: {result.all_approved}")
    print("\n  Reviews:")
    for r in result.reviews:
        icon = "[OK]" if r.feedback.approved else "[X]"
        print(f"    {icon} {r.reviewer}: rating={r.feedback.rating}")
        if r.feedback.comments:
            print(f"        Comments: {r.feedback.comments}")
    all_approved = all(f["approved"] for f in feedback.values())
    expect("all approved", result.all_approved, all_approved)
    expect("status", result.status, "approved" if all_approved else "needs_revision")
    expect("reviewers", [r.reviewer for r in result.reviews], reviewers)
    for key, r in zip(keys, result.reviews, strict=True):
        expect(f"{r.reviewer}'s review", r.feedback.model_dump(), feedback[key])


async def main() -> int:
    parser = argparse.ArgumentParser(description="Suspend/resume workflow demo")
    parser.add_argument(
        "--interactive", action="store_true", help="type the answers instead of scripted ones"
    )
    args = parser.parse_args()
    ask = Answers(args.interactive)

    print_header("Suspend/Resume Workflow Demo")
    print("\nWorkflows pause for input (ctx.step.suspend) and continue when resumed.")
    mode = "interactive: type the answers" if args.interactive else "scripted answers"
    print(f"Mode: {mode}")

    async with PolosClient() as client:
        try:
            await run_approval_workflow(client, ask)
            await run_multi_step_form(client, ask)
            await run_document_review(client, ask)
        except Exception:
            print("\nA demo failed:", file=sys.stderr)
            traceback.print_exc()
            return 1

    print("\n" + "=" * 60)
    print("All demos completed!")
    print("=" * 60)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
