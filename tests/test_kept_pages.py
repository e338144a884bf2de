"""Console pages kept whole per version check (customers/read_cache.py::page_per_check): each view
is the page as its founder would see it rendered, with the browser's own CSRF token and messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import Client

from tests.customers.conftest import NOW, Ev, events_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def kept(settings: Any) -> None:
    settings.METRICS_VERSION_CHECK_SECONDS = 3600


def _client(username: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user(username, password=f"pw-{username}-1", is_staff=True))
    return client


def _body(client: Client, path: str = "/") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("path", ["/", "/customers/acme/"])
def test_a_kept_page_is_each_founders_own(path):
    events_store([Ev("acme", "INCIDENT_VIEWED", NOW)])
    founder, cofounder = _client("founder"), _client("cofounder")
    assert "Log out founder" in _body(founder, path)
    body = _body(cofounder, path)
    assert "Log out cofounder" in body and "Log out founder" not in body


@pytest.mark.parametrize("path", ["/", "/customers/acme/"])
def test_each_browser_logs_out_with_its_own_token_from_a_kept_page(path):
    events_store([Ev("acme", "INCIDENT_VIEWED", NOW)])
    laptop, phone = _client("founder"), Client(enforce_csrf_checks=True)
    phone.force_login(get_user_model().objects.get(username="founder"))
    tokens = {}
    for name, browser in (("laptop", laptop), ("phone", phone)):  # the phone is served the laptop's page
        form = _body(browser, path).split('class="logout"', 1)[1]
        tokens[name] = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    assert tokens["laptop"] != tokens["phone"]
    for name, browser in (("phone", phone), ("laptop", laptop)):
        assert browser.post("/logout/", {"csrfmiddlewaretoken": tokens[name]}).status_code == 302, name


def test_a_message_shows_once_on_a_kept_page():
    founder = _client("founder")
    assert "Saved the playbook" not in _body(founder)
    storage = CookieStorage(HttpRequest())
    founder.cookies["messages"] = storage._encode([Message(constants.SUCCESS, "Saved the playbook")])
    assert '<li class="success">Saved the playbook</li>' in _body(founder)
    assert "Saved the playbook" not in _body(founder)
