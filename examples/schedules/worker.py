"""Worker for the schedules example: runs the workflows of workflows.py.

Run with:
    python worker.py

Reads POLOS_API_URL, POLOS_PROJECT_ID and POLOS_DEPLOYMENT_ID from the environment (or from
a .env file next to this script). Ctrl-C stops it.

Starting it registers the schedules declared with `schedule="<cron>"` (or a dict) on the
server. The server keeps them: slots that come while no worker runs start executions that
wait in their queue for a worker.
"""

import asyncio
import logging

from dotenv import load_dotenv
from workflows import daily_cleanup, hourly_sync, morning_report, schedulable_reminder

from polos import PolosClient, Worker

load_dotenv()

WORKFLOWS = [daily_cleanup, morning_report, hourly_sync, schedulable_reminder]


async def main() -> None:
    client = PolosClient()
    worker = Worker(client, workflows=WORKFLOWS)
    print(f"Starting worker for {len(WORKFLOWS)} workflows on {client.api_url} (Ctrl-C stops)")
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main())
