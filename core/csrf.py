"""The CSRF token a page's forms carry, masked afresh for each response as Django masks it.

Django's ``get_token`` draws its 32-character mask one character at a time from the system's
random source (a system call per character); on a page served whole from the cache
(customers/read_cache.py::page_per_check) that drawing cost more than finding the page. This
draws the same uniform mask from one read of the random source and leaves everything else to
Django: the token is one ``CsrfViewMiddleware`` accepts, and the cookie is set or refreshed as
``get_token`` would.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token

_CHARS = CSRF_ALLOWED_CHARS
_INDEX = {char: index for index, char in enumerate(_CHARS)}
# Random bytes at or above this are drawn again: below it every character is equally likely.
_BYTE_LIMIT = 256 - 256 % len(_CHARS)


def _mask_new() -> list[int]:
    """CSRF_SECRET_LENGTH uniform indexes into the allowed characters."""
    mask: list[int] = []
    while len(mask) < CSRF_SECRET_LENGTH:
        # A few bytes more than needed: about 3% are drawn again.
        mask.extend(byte % len(_CHARS) for byte in secrets.token_bytes(CSRF_SECRET_LENGTH + 8) if byte < _BYTE_LIMIT)
    return mask[:CSRF_SECRET_LENGTH]


def csrf_token_masked(request: HttpRequest) -> str:
    """``django.middleware.csrf.get_token(request)``: the browser's secret under a new mask.

    A request without a valid CSRF cookie is left to Django (it makes the secret and sets the
    cookie); otherwise the cookie is marked to be sent again, as Django does whenever a token is
    used.
    """
    secret = request.META.get("CSRF_COOKIE")
    if not secret or len(secret) != CSRF_SECRET_LENGTH or not set(secret) <= _INDEX.keys():
        return get_token(request)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    mask = _mask_new()
    cipher = "".join(_CHARS[(_INDEX[char] + shift) % len(_CHARS)] for char, shift in zip(secret, mask, strict=True))
    return "".join(_CHARS[shift] for shift in mask) + cipher
