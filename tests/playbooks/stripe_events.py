"""Stripe webhook deliveries as Stripe sends them: an event about a subscription, signed with the
endpoint's secret (stripe's own signing code), posted to the console's webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe
from django.test import Client

STRIPE_SECRET = "whsec_test_secret_for_ops_console"
WEBHOOK_URL = "/api/v1/stripe/webhook"


def stripe_event(
    event_id: str,
    kind: str,
    *,
    customer: str,
    metadata: dict[str, str] | None = None,
    ended: datetime = datetime(2026, 3, 10, 12, tzinfo=UTC),
    **obj: Any,
) -> str:
    """The JSON body of a subscription event (``previous_attributes`` goes beside the object, as Stripe puts it)."""
    ended_at = int(ended.timestamp())
    body: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": ended_at + 60,
        "data": {
            "object": {
                "id": "sub_1",
                "object": "subscription",
                "customer": customer,
                "metadata": metadata or {},
                "ended_at": ended_at,
                **obj,
            },
        },
    }
    if "previous_attributes" in obj:
        body["data"]["previous_attributes"] = body["data"]["object"].pop("previous_attributes")
    return json.dumps(body)


def stripe_post(client: Client, payload: str, *, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> Any:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return client.post(WEBHOOK_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
