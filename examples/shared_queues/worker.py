"""Worker for the shared-queues example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it. The queues' limits hold across workers:
start two workers and the heavy-processing queue still runs at most 2 at once.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import (
    api_call_workflow,
    batch_processor,
    db_read_workflow,
    db_write_workflow,
    heavy_processing_workflow,
    inline_queue_workflow,
    named_queue_workflow,
    queue_orchestrator,
    slow_workflow,
    tenant_report,
)

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [
    api_call_workflow,
    db_read_workflow,
    db_write_workflow,
    heavy_processing_workflow,
    inline_queue_workflow,
    named_queue_workflow,
    batch_processor,
    queue_orchestrator,
    slow_workflow,
    tenant_report,
]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
