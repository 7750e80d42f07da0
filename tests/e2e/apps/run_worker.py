"""A worker process for the end-to-end tests.

    python -m tests.e2e.apps.run_worker --api-url URL --module tests.e2e.apps.engine \
        [--module ...] [--workflow ID ...] [--capacity N]

Serves the given workflows (by default every workflow of the given modules) until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys

import polos


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--module", action="append", required=True)
    parser.add_argument("--workflow", action="append", default=[])
    parser.add_argument("--capacity", type=int, default=None)
    args = parser.parse_args()

    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [worker {os.getpid()}] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    defined: dict[str, polos.Workflow] = {}
    for name in args.module:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, polos.Workflow):
                defined[value.id] = value
    if args.workflow:
        missing = set(args.workflow) - defined.keys()
        if missing:
            parser.error(f"unknown workflow(s): {sorted(missing)}")
        workflows = [defined[w] for w in args.workflow]
    else:
        workflows = list(defined.values())

    async def run() -> None:
        await polos.Worker(
            polos.PolosClient(api_url=args.api_url),
            workflows=workflows,
            max_concurrent_workflows=args.capacity,
        ).run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
