"""Worker for the parallel review example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it: running executions get a few seconds to
finish, the rest are handed back to the server, which gives them to the next worker.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import (
    data_processor,
    launch_tasks,
    parallel_review,
    process_chunk,
    sequential_review,
    single_review,
    task,
)

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [
    single_review,
    parallel_review,
    sequential_review,
    data_processor,
    process_chunk,
    launch_tasks,
    task,
]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
