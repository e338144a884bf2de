"""Console pages: login required, staff only, and a getting-started guide on an empty install."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
PAGES = ["/infra/"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_sent_to_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_a_logged_in_non_staff_user_is_refused(path):
    user = get_user_model().objects.create_user("customer", password="pw-customer-1")
    client = Client()
    client.force_login(user)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_an_empty_install_shows_how_to_send_the_first_event(staff_client, path, settings):
    settings.ALLOWED_HOSTS = ["ops.example.com"]
    response = staff_client.get(path, HTTP_HOST="ops.example.com")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Getting started: send your first event" in body
    assert "curl -X POST http://ops.example.com/api/v1/events" in body
    assert "python manage.py create_api_key backend-prod --scope ingest" in body


def test_the_login_form_logs_a_staff_user_in_with_csrf(staff_user):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    refused = client.post("/login/", {"username": "founder", "password": "pw-founder-1"})
    assert refused.status_code == 403  # no CSRF token
    response = client.post(
        "/login/", {"username": "founder", "password": "pw-founder-1", "csrfmiddlewaretoken": token, "next": "/infra/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/infra/"
