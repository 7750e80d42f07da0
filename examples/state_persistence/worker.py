"""Worker for the state-persistence example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import counter_workflow, shopping_cart_workflow, stateful_with_initial_state

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [counter_workflow, shopping_cart_workflow, stateful_with_initial_state]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
