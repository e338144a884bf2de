"""The CSRF token kept pages carry (core/csrf.py): the browser's own secret, under a new mask each time."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, _unmask_cipher_token

from core.csrf import csrf_token_masked

SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"


def _request(secret: str | None) -> HttpRequest:
    request = HttpRequest()
    if secret is not None:
        request.META["CSRF_COOKIE"] = secret
    return request


def test_each_token_is_the_browsers_secret_under_a_new_mask():
    tokens = [csrf_token_masked(_request(SECRET)) for _ in range(50)]
    assert len(set(tokens)) == 50
    for token in tokens:
        assert len(token) == 64 and set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == SECRET


def test_the_mask_uses_every_allowed_character():
    masks = "".join(csrf_token_masked(_request(SECRET))[:32] for _ in range(200))
    assert set(masks) == set(CSRF_ALLOWED_CHARS)


def test_the_cookie_is_sent_again_as_django_sends_it():
    request = _request(SECRET)
    csrf_token_masked(request)
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True


def test_a_browser_without_a_secret_gets_a_new_one():
    request = _request(None)
    token = csrf_token_masked(request)
    assert len(request.META["CSRF_COOKIE"]) == 32
    assert _unmask_cipher_token(token) == request.META["CSRF_COOKIE"]
