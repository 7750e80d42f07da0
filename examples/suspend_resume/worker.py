"""Worker for the suspend/resume example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it. A suspended execution is not running on
any worker: stopping the worker while workflows wait for answers loses nothing.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import approval_workflow, document_review, multi_step_form

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [approval_workflow, multi_step_form, document_review]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
