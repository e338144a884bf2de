"""Login throttling on the console's and admin's login (django-axes): by account and by address,
a lockout page that says when to retry, an admin unlock, and the right password working again
once the cool-off has passed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.utils import timezone

from opsconsole.login_throttle import client_address

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-42"


@pytest.fixture
def founder() -> object:
    return get_user_model().objects.create_user("founder", password=PASSWORD, is_staff=True, is_superuser=True)


def _login(path: str, username: str, password: str, address: str = "203.0.113.7") -> object:
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def _fail_until_locked(path: str = "/login/", username: str = "founder", address: str = "203.0.113.7") -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(path, username, "wrong", address).status_code == 200  # the form again, with its error
    assert _login(path, username, "wrong", address).status_code == 429  # the failure that reaches the limit


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_after_the_failure_limit_even_the_right_password_is_refused_with_when_to_retry(founder, path):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        _fail_until_locked(path)
        refused = _login(path, "founder", PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(15 * 60)
    retry_at = timezone.localtime(now + timedelta(minutes=15)).strftime("%H:%M")
    assert f"Try again in 15 minutes, after {retry_at}" in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_the_right_password_works_again_once_the_cool_off_has_passed(founder):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        _fail_until_locked()
        assert _login("/login/", "founder", PASSWORD).status_code == 429
    with time_machine.travel(now + timedelta(minutes=14), tick=False):
        assert _login("/login/", "founder", PASSWORD).status_code == 429  # counted from the latest failure
    with time_machine.travel(now + timedelta(minutes=14 + 16), tick=False):
        logged_in = _login("/login/", "founder", PASSWORD)
    assert logged_in.status_code == 302 and logged_in["Location"] == "/"
    assert not AccessAttempt.objects.filter(username="founder").exists()  # a success clears the account's failures


def test_an_account_is_locked_whichever_address_the_failures_come_from(founder):
    for index in range(settings.AXES_FAILURE_LIMIT):
        _login("/login/", "founder", "wrong", address=f"198.51.100.{index + 1}")
    assert _login("/login/", "founder", PASSWORD, address="192.0.2.200").status_code == 429


def test_an_address_is_locked_whichever_accounts_it_tries(founder):
    for index in range(settings.AXES_FAILURE_LIMIT):
        _login("/login/", f"guess{index}", "wrong", address="198.51.100.9")
    assert _login("/login/", "founder", PASSWORD, address="198.51.100.9").status_code == 429
    assert _login("/login/", "founder", PASSWORD, address="198.51.100.10").status_code == 302  # others log in


def test_an_admin_unlocks_an_account_at_once(founder):
    _fail_until_locked(address="198.51.100.20")
    assert _login("/login/", "founder", PASSWORD, address="192.0.2.1").status_code == 429
    admin = Client()
    admin.force_login(get_user_model().objects.create_user("ops", is_staff=True, is_superuser=True))
    listed = admin.get("/admin/axes/accessattempt/")
    assert listed.status_code == 200 and "founder" in listed.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    deleted = admin.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert deleted.status_code == 302
    assert _login("/login/", "founder", PASSWORD, address="192.0.2.1").status_code == 302


def test_the_address_is_nginx_x_real_ip_only_when_the_request_comes_through_a_local_proxy():
    factory = RequestFactory()
    proxied = factory.post("/login/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="203.0.113.5")
    direct = factory.post("/login/", REMOTE_ADDR="198.51.100.3", HTTP_X_REAL_IP="203.0.113.5")
    assert (client_address(proxied), client_address(direct)) == ("203.0.113.5", "198.51.100.3")
