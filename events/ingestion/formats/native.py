"""The console's own format: ``POST /api/v1/events`` (one event or ``{"events": [...]}``)
and the body of ``POST /metrics/interaction``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from events.ingestion.gate import Answer, FormatLimits
from events.ingestion.services import IngestReceipt, ValidatedBatch, items_validated
from events.ingestion.validation import METADATA_MAX_BYTES, IngestError, RowMaker


def native_items(payload: Any, *, max_items: int) -> tuple[list[Any], bool]:
    """The items a native body carries and whether it was a single object.

    Raises IngestError (400 or 413) for a body that is not an event object, a list,
    or ``{"events": [...]}``, or that carries more than ``max_items`` events.
    """
    if isinstance(payload, list):
        items, is_single = payload, False
    elif isinstance(payload, dict) and "events" in payload:
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise IngestError(f"A batch object may only contain 'events'; unexpected keys: {', '.join(extra)}.")
        if not isinstance(payload["events"], list):
            raise IngestError("'events' must be an array of event objects.")
        items, is_single = payload["events"], False
    elif isinstance(payload, dict):
        items, is_single = [payload], True
    else:
        raise IngestError('The body must be a JSON object (one event) or {"events": [...]}.')
    if not items:
        raise IngestError("'events' is empty: send at least one event.")
    if len(items) > max_items:
        raise IngestError(f"{len(items)} events in one request; the limit is {max_items}. Split the batch.", status=413)
    return items, is_single


class NativeFormat:
    name = "native"
    content_types = frozenset({"application/json"})
    parks_unregistered = False  # the settings and the key's flag decide (events.ingestion.validation.parking_wanted)

    @property
    def limits(self) -> FormatLimits:
        # Read on every request: the settings are the one definition (and tests override them).
        return FormatLimits(
            max_body_bytes=settings.INGEST_MAX_BYTES,
            max_items=settings.INGEST_MAX_EVENTS,
            max_item_bytes=METADATA_MAX_BYTES,
        )

    def payload_decode(self, body: bytes, *, content_type: str, query: Mapping[str, str]) -> bytes:
        return body

    def body_key(self, payload: Any) -> str | None:
        return None  # Bearer only: a key in a body would end up in request logs

    def rows(self, payload: Any, maker: RowMaker) -> ValidatedBatch:
        items, _ = native_items(payload, max_items=self.limits.max_items)
        return items_validated(maker, items)

    def answer(self, receipt: IngestReceipt) -> Answer:
        body = receipt.as_dict()
        if receipt.rejected and not receipt.accepted and not receipt.duplicates:
            body["detail"] = "Every event was rejected; see 'rejected' for the reason for each."
            return Answer(400, body)
        return Answer(200, body)

    def refusal(self, error: IngestError) -> Answer:
        return Answer(error.status, {"detail": error.message})


NATIVE = NativeFormat()
