"""The tables of one benchmark run, from its JSON lines.

Reads any mix of lines: ours (`"bench": "fanout" | "latency" | "sql_floor"`, written by
fanout.py, latency.py and sql_floor.py) and the peers' (`"engine": ...`, printed by
/work/shared/bench/peers/*/run.sh). Prints:

1. polos against the SQL floor: per database and N, our children/s, the floor's (same database
   and synchronous mode), our fraction of it, and the latency percentiles;
2. the SQL floor in every mode the run measured;
3. given peers' lines, the ratios: ours / each peer's children/s per N, and each peer's latency
   / ours (both > 1 when polos is faster). A peer on PostgreSQL is compared with our PostgreSQL
   run when there is one, every other peer with our SQLite run.

    .venv/bin/python bench/report.py            # the newest bench/results/{bench,peers}-*.jsonl
    .venv/bin/python bench/report.py bench/results/peers-20261127T120000Z.jsonl
    .venv/bin/python bench/report.py RUN.jsonl --peers PEERS.jsonl --markdown

When one file holds several lines for the same configuration and N, the last one counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Record = dict[str, Any]


# -- reading ---------------------------------------------------------------------------------


def read_lines(paths: Iterable[Path]) -> list[Record]:
    out: list[Record] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                print(f"{path}:{number}: skipped, not JSON ({exc})", file=sys.stderr)
    return out


def database_of(config: Record) -> str:
    """'sqlite FULL', 'sqlite NORMAL' or 'postgresql': what a floor and a run must share."""
    db = str(config.get("database", "sqlite"))
    if db == "sqlite":
        return f"sqlite {str(config.get('sqlite_synchronous', 'full')).upper()}"
    return db


def setup_of(config: Record) -> str:
    """Our configuration: the database, then servers x workers when not 1 x 1."""
    label = database_of(config)
    replicas, workers = config.get("replicas", 1), config.get("workers", 1)
    if (replicas, workers) != (1, 1):
        label += f", {replicas} x {workers}"
    return label


class Run:
    """The lines of one run, sorted into ours (fan-out, latency, floor) and the peers'."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.fanout: dict[tuple[str, int], Record] = {}
        self.latency: dict[str, Record] = {}
        self.floor: dict[tuple[str, int], Record] = {}
        self.peers: list[Record] = []
        self.machine: Record = {}
        for r in records:
            kind = r.get("bench")
            if kind is None and "engine" in r:
                self.peers.append(r)
                continue
            self.machine = r.get("machine") or self.machine
            config = r.get("config") or {}
            if kind == "fanout" and "n" in r:
                self.fanout[(setup_of(config), int(r["n"]))] = r
            elif kind == "latency" and config:
                self.latency[setup_of(config)] = r
            elif kind == "sql_floor" and "n" in r:
                self.floor[(database_of(config), int(r["n"]))] = r

    def setups(self) -> list[str]:
        seen = dict.fromkeys([s for s, _ in self.fanout] + list(self.latency))
        return list(seen)

    def ours_for(self, storage: str) -> str | None:
        """Which of our setups a peer's storage compares with."""
        setups = [s for s in self.setups() if "," not in s]  # 1 server x 1 worker only
        if not setups:
            return None
        if "postgres" in storage.lower():
            for s in setups:
                if s.startswith("postgresql"):
                    return s
        for s in setups:
            if s == "sqlite FULL":
                return s
        return setups[0]


# -- formatting ------------------------------------------------------------------------------


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.1f}x" if a / b >= 0.995 else f"{a / b:.2f}x"


def table(head: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool, left: int = 1) -> str:
    """Aligned text (the first `left` columns to the left, numbers to the right) or markdown."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = " | ".join(f"{{:{'<' if i < left else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), "-+-".join("-" * w for w in widths)]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def cps(record: Record | None) -> float | None:
    if record is None or record.get("status") != "ok":
        return None
    value = record.get("children_per_s")
    return float(value) if value is not None else None


# -- the tables ------------------------------------------------------------------------------


def ours_table(run: Run, markdown: bool) -> str:
    rows: list[list[str]] = []
    for setup in run.setups():
        db = setup.split(",")[0]
        lat = run.latency.get(setup)
        lat_ms = (lat or {}).get("latency_ms", {}) if (lat or {}).get("status") == "ok" else {}
        lat_cells = [num(lat_ms.get("p50"), 2), num(lat_ms.get("p95"), 2)]
        sizes = sorted(n for s, n in run.fanout if s == setup)
        for i, n in enumerate(sizes or [None]):
            rec = run.fanout.get((setup, n)) if n is not None else None
            ours, floor = cps(rec), cps(run.floor.get((db, n))) if n is not None else None
            status = "" if rec is None or rec.get("status") == "ok" else f" ({rec['status']})"
            rows.append(
                [
                    setup,
                    "-" if n is None else f"{n:,}",
                    num(ours) + status,
                    num(floor),
                    "-" if ours is None or not floor else f"{100 * ours / floor:.1f} %",
                    *(lat_cells if i == 0 else ["", ""]),
                ]
            )
    head = ["polos on", "N", "children/s", "SQL floor /s", "of the floor", "p50 ms", "p95 ms"]
    return table(head, rows, markdown)


def floor_table(run: Run, markdown: bool) -> str:
    dbs = list(dict.fromkeys(db for db, _ in run.floor))
    sizes = sorted({n for _, n in run.floor})
    rows = [[db, *(num(cps(run.floor.get((db, n)))) for n in sizes)] for db in dbs]
    return table(["SQL floor, children/s", *(f"N={n:,}" for n in sizes)], rows, markdown)


def latency_line(run: Run) -> list[str]:
    out = []
    for setup, r in run.latency.items():
        if r.get("status") != "ok":
            out.append(f"latency on {setup}: {r.get('status')}")
            continue
        ms = r["latency_ms"]
        out.append(
            f"latency on {setup}, {r.get('runs')} sequential calls: p50 {ms['p50']:.2f} ms, "
            f"p95 {ms['p95']:.2f} ms, p99 {ms['p99']:.2f} ms, mean {ms['mean']:.2f} ms"
        )
    return out


def peer_name(p: Record) -> str:
    storage = p.get("storage")
    return f"{p.get('engine', '?')} ({storage})" if storage else str(p.get("engine", "?"))


def peers_tables(run: Run, markdown: bool) -> str:
    """Throughput per peer and N, then latency per peer."""
    rows: list[list[str]] = []
    lat_rows: list[list[str]] = []
    for p in run.peers:
        setup = run.ours_for(str(p.get("storage", "")))
        par = p.get("parallel")
        if not par:
            rows.append(
                [peer_name(p), setup or "-", "-", str(p.get("status", "no result")), "", ""]
            )
            continue
        for key in sorted(par, key=int):
            n, entry = int(key), par[key]
            theirs = entry.get("children_per_s") if entry.get("status") == "ok" else None
            ours = cps(run.fanout.get((setup, n))) if setup else None
            peer_cell = num(theirs) if theirs is not None else str(entry.get("status"))[:32]
            rows.append(
                [peer_name(p), setup or "-", f"{n:,}", peer_cell, num(ours), ratio(ours, theirs)]
            )
        lat = p.get("single_latency_ms") or {}
        ours_lat = run.latency.get(setup) if setup else None
        ours_ms = (ours_lat or {}).get("latency_ms", {})
        row = [peer_name(p), setup or "-"]
        for q in ("p50", "p95"):
            theirs_q = lat.get(q) if lat.get("status", "ok") == "ok" else None
            row += [num(theirs_q, 1), num(ours_ms.get(q), 2), ratio(theirs_q, ours_ms.get(q))]
        lat_rows.append(row)
    head = ["peer (storage)", "polos on", "N", "peer children/s", "polos", "polos/peer"]
    out = table(head, rows, markdown, left=2)
    if lat_rows:
        lat_head = ["peer (storage)", "polos on", "p50 ms peer", "polos", "peer/polos"]
        lat_head += ["p95 ms peer", "polos", "peer/polos"]
        out += "\n\n" + table(lat_head, lat_rows, markdown, left=2)
    return out


def describe(run: Run, paths: Sequence[Path]) -> str:
    m = run.machine
    where = ", ".join(str(p) for p in paths)
    if not m:
        return f"from {where}"
    return (
        f"from {where}\n{m.get('cpu_count')} x {m.get('cpu_model')}, {m.get('memory_mib')} MiB, "
        f"Python {m.get('python')}, SQLite {m.get('sqlite')}, polos {m.get('polos')}, "
        f"commit {str(m.get('git_commit', '?'))[:12]}"
        + ("-dirty" if str(m.get("git_commit", "")).endswith("-dirty") else "")
        + f", load at start {m.get('load_avg_at_start')}"
    )


def newest_run() -> Path | None:
    runs = sorted(RESULTS_DIR.glob("bench-*.jsonl")) + sorted(RESULTS_DIR.glob("peers-*.jsonl"))
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", nargs="*", type=Path, help="JSON lines of one run (default: newest)")
    p.add_argument("--peers", nargs="+", type=Path, default=[], help="the peers' JSON lines")
    p.add_argument("--markdown", action="store_true", help="markdown tables")
    args = p.parse_args(argv)
    files: list[Path] = list(args.files)
    if not files:
        newest = newest_run()
        if newest is None:
            p.error(f"no run in {RESULTS_DIR}: pass the JSON lines file(s)")
        files = [newest]
    paths = files + list(args.peers)
    run = Run(read_lines(paths))
    print(describe(run, paths))
    if run.fanout or run.latency:
        print("\npolos against the SQL floor (same database, same synchronous mode)\n")
        print(ours_table(run, args.markdown))
    if run.floor:
        print()
        print(floor_table(run, args.markdown))
    if run.latency:
        print()
        print("\n".join(latency_line(run)))
    if run.peers:
        print("\npolos against the peers (a ratio above 1: polos is faster)\n")
        print(peers_tables(run, args.markdown))
    if not (run.fanout or run.latency or run.floor or run.peers):
        print("nothing to report: no benchmark lines found")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
