"""Security properties a founder cannot see but relies on: headers on every response
(HSTS under the production settings, served by gunicorn), CSRF on every form, and no
secret committed to the repository."""

from __future__ import annotations

import math
import re
import secrets
import subprocess
import urllib.request
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.processes import BASE_DIR, database_url, gunicorn
from tests.test_auth_matrix import ROUTES

pytestmark = pytest.mark.django_db


# --- Headers ---------------------------------------------------------------------------------
def _database_url() -> str:
    """The test database, as a URL the gunicorn subprocess can use."""
    return database_url()


@pytest.mark.slow
@pytest.mark.default_install
def test_production_settings_send_hsts_and_the_other_security_headers():
    with gunicorn(DATABASE_URL=_database_url()) as url:
        for path in ("/login/", "/ops/customers"):
            request = urllib.request.Request(url + path, headers={"X-Forwarded-Proto": "https"})
            try:
                response = urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:  # the API answers 401 to an anonymous caller
                response = exc
            headers = response.headers
            assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload", path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["Referrer-Policy"] == "same-origin", path
            if path == "/login/":
                cookie = headers["Set-Cookie"]
                assert "csrftoken=" in cookie and "Secure" in cookie


@pytest.fixture
def staff_client_plain(db: Any) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create(username="sec-staff", is_staff=True))
    return client


def test_every_response_carries_nosniff_frame_deny_and_a_referrer_policy(staff_client_plain):
    for route in ROUTES:
        for client in (Client(), staff_client_plain):
            response = client.get(route.path)
            assert response["X-Content-Type-Options"] == "nosniff", route.path
            assert response["X-Frame-Options"] == "DENY", route.path
            assert response["Referrer-Policy"] == "same-origin", route.path


# --- CSRF ------------------------------------------------------------------------------------
class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": (values.get("method") or "get").lower(), "action": values.get("action"), "inputs": []}
            )
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(values.get("name"))


def _pages(staff: Client) -> list[tuple[str, str]]:
    """(path, html) of every page a browser can show: the console pages, the login and the admin index."""
    pages = []
    for route in ROUTES:
        if route.api_view is not None or route.name in ("api-schema", "metrics-prometheus", "logout"):
            continue
        client = Client() if route.name == "login" else staff
        response = client.get(route.path, follow=True)
        if response.status_code == 200 and "text/html" in response["Content-Type"]:
            pages.append((route.path, response.content.decode()))
    return pages


def test_every_post_form_carries_a_csrf_token_and_its_target_enforces_it(staff_client_plain):
    pages = _pages(staff_client_plain)
    post_forms = []
    for path, html in pages:
        parser = _Forms()
        parser.feed(html)
        for form in parser.forms:
            if form["method"] == "post":
                assert "csrfmiddlewaretoken" in form["inputs"], f"a POST form without a CSRF token on {path}"
                post_forms.append((path, form["action"] or path))
    assert {path for path, _ in post_forms} >= {"/login/", "/admin/"}  # the login and the logout forms at least

    user = get_user_model().objects.get(username="sec-staff")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    for path, action in post_forms:
        response = strict.post(action, {"anything": "1"})
        assert response.status_code == 403, f"{action} (form on {path}) accepted a POST without a CSRF token"
        assert b"CSRF" in response.content


# --- Secrets ---------------------------------------------------------------------------------
SECRET_PATTERNS = [
    re.compile(r"""SECRET_KEY\s*[=:]\s*['"]?(?P<value>[^'"\s,)]{16,})"""),
    re.compile(r"\b(?P<value>oc_[A-Za-z0-9_-]{32,})"),
    re.compile(r"(?P<value>https://hooks\.slack\.com/services/[A-Za-z0-9_/-]{20,})"),
    re.compile(r"(?P<value>-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----)"),
]
# Values that look like secrets on purpose say so in their text (test fixtures, the DEBUG default).
PLACEHOLDER_MARKS = ("test-only", "insecure", "example", "placeholder", "changeme")


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secrets_find(text: str) -> list[str]:
    """High-entropy values in the places secrets live; a private key header always counts."""
    found = []
    for pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group("value")
            if any(mark in value.lower() for mark in PLACEHOLDER_MARKS) or value.startswith("env"):
                continue
            if "PRIVATE KEY" in value or _entropy(value) >= 4.0:
                found.append(value)
    return found


def _tracked_files() -> list[Path]:
    try:
        listed = (
            subprocess.run(["git", "ls-files", "-z"], cwd=BASE_DIR, capture_output=True, check=True)
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("the secret scan needs a git checkout (git ls-files)")
    return [BASE_DIR / name for name in listed if name]


def test_the_scanner_finds_a_secret_when_there_is_one():
    text = (
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"key = 'oc_{secrets.token_urlsafe(32)}'\n"
        f"SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T{secrets.token_hex(5).upper()}/B{secrets.token_hex(5).upper()}/{secrets.token_urlsafe(18)}\n"
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n"  # split: this file is scanned too
    )
    assert len(secrets_find(text)) == 4
    assert secrets_find("SECRET_KEY=dev-only-insecure-key-not-for-production\nBearer oc_not_a_real_key\n") == []


def test_no_secret_is_committed():
    files = _tracked_files()
    assert files, "git ls-files listed nothing"
    assert not [f for f in files if f.name == ".env" or f.suffix in (".pem", ".key")], "a secrets file is tracked"
    leaks = {}
    for path in files:
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        found = secrets_find(text)
        if found:
            leaks[str(path.relative_to(BASE_DIR))] = [value[:12] + "..." for value in found]
    assert not leaks, f"possible secrets committed: {leaks}"
