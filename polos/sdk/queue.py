"""Queues: a name and an optional concurrency limit, enforced by the server across all workers
and all server replicas."""

from __future__ import annotations


class Queue:
    def __init__(self, name: str, concurrency_limit: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a queue needs a non-empty name")
        if concurrency_limit is not None and (
            not isinstance(concurrency_limit, int) or concurrency_limit < 1
        ):
            raise ValueError(f"queue {name!r}: concurrency_limit must be a positive int or None")
        self.name = name
        self.concurrency_limit = concurrency_limit

    def __repr__(self) -> str:
        return f"Queue(name={self.name!r}, concurrency_limit={self.concurrency_limit!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Queue)
            and other.name == self.name
            and other.concurrency_limit == self.concurrency_limit
        )

    def __hash__(self) -> int:
        return hash((self.name, self.concurrency_limit))


def queue(name: str, concurrency_limit: int | None = None) -> Queue:
    """A queue that several workflows can share: `@workflow(queue=my_queue)`."""
    return Queue(name, concurrency_limit)
