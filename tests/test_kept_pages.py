"""Console pages kept whole per version check (customers/read_cache.py::page_per_check): each view
is the page as its founder would see it rendered, with the browser's own CSRF token and messages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from customers.read_cache import FRESH_READS_COOKIE, metrics_version, metrics_version_forget, page_per_check
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


class _SlowPage:
    """A page whose renders are counted, each shown as its number, and held until ``release`` is set."""

    def __init__(self) -> None:
        self.renders = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def render(self, extra: dict[str, Any]) -> HttpResponse:
        self.renders += 1
        number = self.renders
        self.started.set()
        assert self.release.wait(30)
        return HttpResponse(f"<p>render {number}</p><input value='{extra['csrf_token']}'>")


def _view(
    page: _SlowPage, user: Any, answers: dict[str, str], name: str, *, cookies: dict[str, str] | None = None
) -> None:
    request = RequestFactory().get("/")
    request.user = user
    request.COOKIES.update(cookies or {})
    answers[name] = page_per_check(request, key="slow-page", render=page.render).content.decode()


def _in_thread(target: Callable[..., None], *args: Any, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs)
    thread.start()
    return thread


def _check_again() -> None:
    """The process reads the version again, as it does every METRICS_VERSION_CHECK_SECONDS."""
    metrics_version_forget()
    metrics_version()


def test_two_threads_missing_the_same_page_render_it_once():
    user = get_user_model().objects.create_user("founder", is_staff=True)
    _check_again()
    page, answers = _SlowPage(), {}
    first = _in_thread(_view, page, user, answers, "first")
    assert page.started.wait(30)
    second = _in_thread(_view, page, user, answers, "second")
    second.join(0.5)  # the second asks while the first still renders
    page.release.set()
    first.join(30)
    second.join(30)
    assert page.renders == 1
    assert "render 1" in answers["first"] and "render 1" in answers["second"]
    assert "csrf-placeholder" not in answers["second"]


def _rendering_again() -> tuple[Any, _SlowPage, dict[str, str], threading.Thread]:
    """A page rendered at one check, and a thread rendering it again (held) after the next check:
    (the founder, the page, the answers by name, that thread)."""
    user = get_user_model().objects.create_user("founder", is_staff=True)
    _check_again()
    page, answers = _SlowPage(), {}
    page.release.set()
    _view(page, user, answers, "before")
    _check_again()
    page.release.clear()
    page.started.clear()  # set by the render before: the next wait must see the new one begin
    first = _in_thread(_view, page, user, answers, "first")
    assert page.started.wait(30)
    return user, page, answers, first


def test_while_a_page_renders_the_other_threads_serve_it_as_it_was_at_the_previous_check():
    user, page, answers, first = _rendering_again()
    second = _in_thread(_view, page, user, answers, "second")
    second.join(30)
    assert not second.is_alive() and "render 1" in answers["second"]  # served without waiting
    page.release.set()
    first.join(30)
    assert "render 2" in answers["first"]
    _view(page, user, answers, "after")
    assert "render 2" in answers["after"] and page.renders == 2


def test_a_browser_that_has_just_posted_waits_for_the_page_being_rendered():
    user, page, answers, first = _rendering_again()
    posted = _in_thread(_view, page, user, answers, "posted", cookies={FRESH_READS_COOKIE: "1"})
    posted.join(0.5)
    page.release.set()
    first.join(30)
    posted.join(30)
    assert "render 2" in answers["posted"] and page.renders == 2
