"""`polos executions tree`: the fan-out tree (GET /executions/{id}/tree) as a rich tree.

parallel_review 5f0c…  completed 1.21s · 20 children: 20 completed
├── level 1: 20 — 20 completed
...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from polos.cli.output import (
    counts_text,
    elapsed,
    error_line,
    remaining_counts,
    status_text,
)


def _execution_label(node: Mapping[str, Any]) -> Text:
    e = node["execution"]
    label = Text()
    if e.get("batch_index") is not None:
        label.append(f"[{e['batch_index']}] ", style="dim")
    label.append(str(e["workflow_id"]), style="bold")
    label.append(f" {e['id']}  ")
    label.append_text(status_text(str(e["status"])))
    if e.get("started_at"):
        label.append(f" {elapsed(e.get('started_at'), e.get('completed_at'))}", style="dim")
    children = node.get("children") or {}
    total = int(children.get("total") or 0)
    if total and not node.get("expanded"):
        label.append(f" · {total} {'child' if total == 1 else 'children'}: ")
        label.append_text(counts_text(children))
    if e.get("error"):
        label.append(f"\n{error_line(e['error'])}", style="red")
    return label


def _group_label(group: Mapping[str, Any]) -> Text:
    counts = group.get("counts") or {}
    label = Text()
    key = group.get("step_key")
    label.append("step ", style="dim")
    label.append(repr(key) if key is not None else "(none)", style="bold")
    label.append(f" · {int(counts.get('total') or 0)}: ")
    label.append_text(counts_text(counts))
    return label


def _add_children(branch: Tree, node: Mapping[str, Any]) -> None:
    for group in node.get("groups") or []:
        sub = branch.add(_group_label(group))
        listed = group.get("executions") or []
        for child in listed:
            _add_children(sub.add(_execution_label(child)), child)
        more = int(group.get("more") or 0)
        if more:
            rest = remaining_counts(group.get("counts") or {}, [c["execution"] for c in listed])
            line = Text(f"… {more} more: ", style="dim")
            line.append_text(counts_text(rest))
            sub.add(line)
    more_groups = int(node.get("more_groups") or 0)
    if more_groups:
        branch.add(Text(f"… {more_groups} more step(s) with children", style="dim"))


def _failures(levels: list[Mapping[str, Any]]) -> int:
    return sum(int(c.get("failed") or 0) + int(c.get("cancelled") or 0) for c in levels)


def _listed_failures(node: Mapping[str, Any]) -> int:
    """Failed or cancelled executions listed below `node`."""
    found = 0
    for group in node.get("groups") or []:
        for child in group.get("executions") or []:
            found += child["execution"]["status"] in ("failed", "cancelled")
            found += _listed_failures(child)
    return found


def render_tree(data: Mapping[str, Any]) -> RenderableType:
    """The tree, with the per-level counts above it."""
    root = data["root"]
    tree = Tree(_execution_label(root), guide_style="dim")
    _add_children(tree, root)
    header = Text()
    levels = data.get("levels") or []
    for depth, counts in enumerate(levels, 1):
        total = int(counts.get("total") or 0)
        if not total:
            break
        if header:
            header.append("\n")
        header.append(f"level {depth}: {total} · ", style="bold")
        header.append_text(counts_text(counts))
    parts: list[RenderableType] = []
    if header:
        parts.append(header)
    parts.append(tree)
    hidden = _failures(levels) - _listed_failures(root)
    if hidden > 0:
        e = root["execution"]
        where = "--root" if e.get("parent_execution_id") is None else "--parent"
        parts.append(
            Text(
                f"{hidden} failed or cancelled not listed above: polos executions list "
                f"{where} {e['id']} --status failed",
                style="dim",
            )
        )
    if data.get("truncated"):
        parts.append(
            Text(
                "(the listing stopped at the server's node budget; use a smaller --depth or "
                "--limit-per-group)",
                style="dim",
            )
        )
    return Group(*parts)
