"""Plain Django views of the events app: the Prometheus scrape endpoint and the Vocabulary page."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from core.exporter import metrics_exposition
from core.pages import staff_required
from events.registry import example_event_types_unsent_delete
from events.vocabulary import VOCABULARY_DAYS, vocabulary, vocabulary_mismatch_reasons


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``. Open unless ``METRICS_BEARER_TOKEN`` is set; then Prometheus
    must send ``Authorization: Bearer <token>`` (``authorization.credentials`` in a scrape config)."""
    token = settings.METRICS_BEARER_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse("Send 'Authorization: Bearer <METRICS_BEARER_TOKEN>'.\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="ops-console-metrics"'
            response["Content-Type"] = "text/plain; charset=utf-8"
            return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)


@staff_required
@require_GET
def vocabulary_page(request: HttpRequest) -> HttpResponse:
    """``/vocabulary/``: the names the product sends against the registry, to set roles up in one place."""
    found = vocabulary()
    return render(
        request,
        "events/vocabulary.html",
        {
            "vocabulary": found,
            "days": VOCABULARY_DAYS,
            "mismatch": vocabulary_mismatch_reasons(found),
            "strict_ingest": settings.INGEST_REJECT_UNREGISTERED,
        },
    )


@staff_required
@require_POST
def vocabulary_examples_remove(request: HttpRequest) -> HttpResponse:
    """``POST /vocabulary/examples/remove``: delete every example type the product never sent,
    so no text, condition or talk track names one; types with stored events are kept."""
    removed = example_event_types_unsent_delete()
    if removed:
        noun = "example type" if len(removed) == 1 else "example types"
        messages.success(request, f"Removed {len(removed)} {noun} your product never sent: {', '.join(removed)}.")
    else:
        messages.info(request, "Every example type left has events stored; nothing was removed.")
    return redirect("vocabulary")
