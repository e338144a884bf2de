"""The API's content negotiation (opsconsole/negotiation.py): a request naming no format gets JSON,
as DRF's own negotiation gives it; any other request is DRF's to negotiate."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("accept", "query", "content_type"),
    [
        (None, "", "application/json"),
        ("*/*", "", "application/json"),
        ("application/json", "", "application/json"),
        ("text/html", "", "text/html; charset=utf-8"),
        ("*/*", "format=api", "text/html; charset=utf-8"),
        ("*/*", "format=json", "application/json"),
    ],
)
def test_the_at_risk_answer_comes_in_the_format_asked_for(read_client, accept, query, content_type):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = read_client.get(f"/ops/customers/at-risk?{query}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type


def test_a_format_nobody_renders_is_a_406(read_client):
    response = read_client.get("/ops/customers/at-risk", HTTP_ACCEPT="image/png")
    assert response.status_code == 406
