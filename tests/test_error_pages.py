"""Production error pages in the console's style (issue 17): HTML for pages, JSON for the API,
never Django's debug page; and the favicon browsers ask for."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

pytestmark = pytest.mark.django_db


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


urlpatterns = [
    path("boom/", _boom),
    path("ops/boom", _boom),
    path("", include("opsconsole.urls")),
]
handler404 = "opsconsole.views.not_found"
handler500 = "opsconsole.views.server_error"


@override_settings(DEBUG=False)
def test_an_unknown_customer_is_the_consoles_404_page(staff_client: Any) -> None:
    response = staff_client.get("/customers/nope/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "<h1>Not found</h1>" in body and "/customers/nope/" in body and "console.css" in body
    assert "Page not found" not in body and "URLconf" not in body  # not Django's page


@override_settings(DEBUG=False)
def test_an_unknown_api_path_is_json(staff_client: Any) -> None:
    response = staff_client.get("/ops/customers/nope")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


@override_settings(DEBUG=False, ROOT_URLCONF="tests.test_error_pages")
def test_a_server_error_is_the_consoles_500_page_for_pages_and_json_for_the_api(staff_user: Any) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    page = client.get("/boom/")
    assert page.status_code == 500
    assert "Something went wrong" in page.content.decode() and "console.css" in page.content.decode()
    assert "a bug" not in page.content.decode() and "Traceback" not in page.content.decode()
    api = client.get("/ops/boom")
    assert api.status_code == 500 and api.json()["detail"].startswith("Internal error")


def test_the_favicon_is_an_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
