"""Status counts of trees and of children, kept as counters (migration 0007).

A tree's progress (its executions by status) and a node's children by status were index-only
counts over indexes keyed by status, and every status change moved an entry of each of them.
Instead, each operation that changes executions' statuses records what moved here (+1 to the
new status, -1 to the old, per root and per (parent, step)), and the sums are written once:
on PostgreSQL at the end of the unit's transaction, on SQLite before the COMMIT of the group
commit, for all its units together (a unit rolled back to its savepoint drops its own). A
report that finishes 500 children of one parent changes a few counter rows; a submission and
the claim parked for it, committed together, change one.

The statuses before a change are read in the same transaction (the rows are locked on
PostgreSQL, the transaction is alone on SQLite), so the counters are exactly a `GROUP BY`
over the executions at every commit (tests/store/conftest.py checks after every store test).
Counter rows are sorted before they are written, so units that update the same counters on
PostgreSQL lock them in one order and cannot deadlock on them; the counters are the last
rows a unit locks.

Children started outside a step (`parent_step_key` NULL) are counted under the step key ''.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from polos.model import ClaimedExecution, NewExecution
from polos.store.rows import Row, rows_in

Counts = dict[str, int]
# (root_execution_id, status) and (parent_execution_id, parent step key, status).
TreeKey = tuple[str, str]
ChildKey = tuple[str, str, str]
# What a status change needs to know of an execution: its root, parent and parent step.
Placement = tuple[str, str | None, str | None]


class CountDeltas:
    """Counter changes not yet written: per (root, status) and per (parent, step, status)."""

    __slots__ = ("children", "tree")

    def __init__(self) -> None:
        self.tree: dict[TreeKey, int] = {}
        self.children: dict[ChildKey, int] = {}

    def add(self, placement: Placement, status: str, delta: int) -> None:
        root, parent, step_key = placement
        tree = self.tree
        key = (root, status)
        tree[key] = tree.get(key, 0) + delta
        if parent is not None:
            children = self.children
            child_key = (parent, step_key or "", status)
            children[child_key] = children.get(child_key, 0) + delta

    def merge(self, other: CountDeltas) -> None:
        for key, delta in other.tree.items():
            self.tree[key] = self.tree.get(key, 0) + delta
        for child_key, delta in other.children.items():
            self.children[child_key] = self.children.get(child_key, 0) + delta


class StatusCountOps:
    """A mixin of `StoreTx`, written with the primitives of `ModelOps`."""

    LOCK: str
    # This unit's changes, and (SQLite) those of the units before it in the same transaction,
    # which the store writes once before its COMMIT: reads inside a unit add both.
    _counts: CountDeltas | None = None
    _counts_before: CountDeltas | None = None

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    # -- recording moves --------------------------------------------------------------------

    def count_status(self, placement: Placement, status: str, delta: int) -> None:
        """`delta` executions placed at `placement` entered (or, negative, left) `status`."""
        counts = self._counts
        if counts is None:
            counts = self._counts = CountDeltas()
        counts.add(placement, status, delta)

    def count_moves(self, moves: Iterable[tuple[Placement, str | None, str]]) -> None:
        """Each (placement, old status or None for a new execution, new status)."""
        for placement, old, new in moves:
            if old == new:
                continue
            if old is not None:
                self.count_status(placement, old, -1)
            self.count_status(placement, new, 1)

    def take_counts(self) -> CountDeltas | None:
        """This unit's changes, handed to the store to write later (SQLite)."""
        counts, self._counts = self._counts, None
        return counts

    def count_inserted(self, rows: Iterable[NewExecution]) -> None:
        """New executions (queued)."""
        for r in rows:
            self.count_status(
                (r.root_execution_id or r.id, r.parent_execution_id, r.parent_step_key), "queued", 1
            )

    def count_claimed(self, claimed: Iterable[ClaimedExecution]) -> None:
        """Executions a claim moved from queued to running."""
        for c in claimed:
            placement = (c.root_execution_id, c.parent_execution_id, c.parent_step_key)
            self.count_status(placement, "queued", -1)
            self.count_status(placement, "running", 1)

    async def statuses_before(self, execution_ids: Sequence[str]) -> list[tuple[Placement, str]]:
        """The placement and current status of each execution that exists (locked on
        PostgreSQL, in ID order like every other lock on executions)."""
        rows = await rows_in(
            self._rows,
            "SELECT root_execution_id, parent_execution_id, parent_step_key, status "
            f"FROM executions WHERE id IN ({{marks}}) ORDER BY id{self.LOCK}",
            sorted(set(execution_ids)),
        )
        return [((str(r[0]), r[1], r[2]), str(r[3])) for r in rows]

    async def count_changed(self, execution_ids: Sequence[str], new_status: str) -> None:
        """Record that `execution_ids` (those that exist) are about to take `new_status`:
        called before the UPDATE, which must change every one of them."""
        self.count_moves(
            (placement, old, new_status)
            for placement, old in await self.statuses_before(execution_ids)
        )

    async def flush_status_counts(self, counts: CountDeltas | None = None) -> None:
        """Write `counts` (default: this unit's changes, which are then forgotten)."""
        if counts is None:
            counts = self.take_counts()
            if counts is None:
                return
        tree_rows = sorted((k[0], k[1], d) for k, d in counts.tree.items() if d)
        if tree_rows:
            await self._many(
                "INSERT INTO tree_status_counts (root_execution_id, status, n) VALUES (?, ?, ?) "
                "ON CONFLICT (root_execution_id, status) "
                "DO UPDATE SET n = tree_status_counts.n + excluded.n",
                tree_rows,
            )
        child_rows = sorted((k[0], k[1], k[2], d) for k, d in counts.children.items() if d)
        if child_rows:
            await self._many(
                "INSERT INTO child_status_counts (parent_execution_id, parent_step_key, status, "
                "n) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (parent_execution_id, parent_step_key, status) "
                "DO UPDATE SET n = child_status_counts.n + excluded.n",
                child_rows,
            )

    def _unwritten(self) -> list[CountDeltas]:
        return [c for c in (self._counts_before, self._counts) if c is not None]

    # -- reading ----------------------------------------------------------------------------

    async def tree_counts(self, root_execution_id: str) -> Counts:
        """Executions of the tree of a root (the root included) by status."""
        rows = await self._rows(
            "SELECT status, n FROM tree_status_counts WHERE root_execution_id = ?",
            root_execution_id,
        )
        counts = {str(r[0]): int(r[1]) for r in rows}
        for unwritten in self._unwritten():
            for (root, status), delta in unwritten.tree.items():
                if root == root_execution_id:
                    counts[status] = counts.get(status, 0) + delta
        return {s: n for s, n in counts.items() if n}

    async def children_counts(self, parent_ids: Sequence[str]) -> dict[str, Counts]:
        """Direct children of each parent by status."""
        out: dict[str, Counts] = {}
        ids = list(dict.fromkeys(parent_ids))
        for r in await rows_in(
            self._rows,
            "SELECT parent_execution_id, status, SUM(n) FROM child_status_counts "
            "WHERE parent_execution_id IN ({marks}) GROUP BY parent_execution_id, status",
            ids,
        ):
            out.setdefault(str(r[0]), {})[str(r[1])] = int(r[2])
        wanted = set(ids)
        for unwritten in self._unwritten():
            for (parent, _step, status), delta in unwritten.children.items():
                if parent in wanted:
                    counts = out.setdefault(parent, {})
                    counts[status] = counts.get(status, 0) + delta
        return {p: {s: n for s, n in c.items() if n} for p, c in out.items() if any(c.values())}

    async def child_status_counts(self, parent_id: str, step_key: str) -> Counts:
        """How many children of a parent's step are in each status (this unit's own changes
        included: batch policies read it right after finishing children)."""
        rows = await self._rows(
            "SELECT status, n FROM child_status_counts WHERE parent_execution_id = ? "
            "AND parent_step_key = ?",
            parent_id,
            step_key,
        )
        counts = {str(r[0]): int(r[1]) for r in rows}
        for unwritten in self._unwritten():
            for (parent, step, status), delta in unwritten.children.items():
                if parent == parent_id and step == step_key:
                    counts[status] = counts.get(status, 0) + delta
        return {s: n for s, n in counts.items() if n}
