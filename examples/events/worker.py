"""Worker for the events example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it.

Registering an event-triggered workflow subscribes it to its topic on the server, from the
topic's end: events published earlier do not start it. The subscription stays while no
worker runs: executions started by events meanwhile wait in their queue for a worker.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import (
    batch_processor,
    event_publisher,
    event_waiter,
    on_order_created,
    on_user_signup,
)

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [on_order_created, on_user_signup, batch_processor, event_publisher, event_waiter]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
