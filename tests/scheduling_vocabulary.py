"""A second product's vocabulary: "Slotwise", a B2B appointment-scheduling tool.

Neither the spec's taxonomy nor invoicing: its core value is a booking, its friction a
booking abandoned half-way, a search left idle, a calendar sync that failed, a double
booking the rules blocked; it also exports availability reports (a side output) and its
integration pings the API. Installed through the registry's own write service (the one
PUT /ops/event-types uses), after removing the spec's default types, as a founder would.
"""

from __future__ import annotations

from typing import Any

from events.models import EventType
from events.registry import event_type_put

# name -> fields (everything left out takes its default).
SCHEDULING_TYPES: dict[str, dict[str, Any]] = {
    "account_created": {"category": "lifecycle", "north_star_role": "signup", "counts_as_real_interaction": True},
    "user_signed_in": {"category": "lifecycle", "north_star_role": "login", "counts_as_real_interaction": True},
    "$pageview": {"category": "lifecycle", "page_view": True},
    "Booking Created": {
        "category": "value",
        "core_value": True,
        "engagement_weight": 1.0,
        "north_star_role": "core_action",
        "counts_as_real_interaction": True,
    },
    "booking_confirmed": {
        "label": "Booking confirmed",
        "category": "value",
        "engagement_weight": 0.5,
        "north_star_role": "decision",
        "counts_as_real_interaction": True,
    },
    "availability_report_exported": {"label": "Availability report", "category": "value"},
    "Booking Abandoned": {"category": "friction", "friction_signal": "friction", "friction_weight": 3.0},
    "slot_search_idle": {"category": "friction", "friction_signal": "friction", "friction_weight": 1.0},
    "calendar_sync_failed": {"category": "friction", "friction_signal": "system_issue", "friction_weight": 2.0},
    "double_booking_blocked": {
        "label": "Double-booking block",
        "category": "friction",
        "friction_signal": "blocked",
        "friction_weight": 2.0,
    },
    "api_ping": {"category": "engagement"},
}


def scheduling_vocabulary_install() -> None:
    """Replace the registry with Slotwise's types (in this order: the order texts list them in)."""
    EventType.objects.all().delete()
    for name, fields in SCHEDULING_TYPES.items():
        event_type_put(name=name, data=fields)
