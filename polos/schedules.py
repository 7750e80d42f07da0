"""`polos.schedules`: the public path of polos/sdk/schedules.py (upstream's module path)."""

from polos.sdk.schedules import SchedulePayload, create, schedules

__all__ = ["SchedulePayload", "create", "schedules"]
