"""Worker for the workflow-basics example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import (
    data_pipeline,
    orchestrator_workflow,
    parent_workflow,
    process_order,
    random_workflow,
    simple_workflow,
    timed_workflow,
    validate_and_enrich,
)

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [
    simple_workflow,
    process_order,
    data_pipeline,
    timed_workflow,
    random_workflow,
    validate_and_enrich,
    parent_workflow,
    orchestrator_workflow,
]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    print(f"  Workflows: {[w.id for w in WORKFLOWS]}")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
