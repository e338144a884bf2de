"""API keys are remembered per process for API_KEY_CACHE_SECONDS: revocation takes effect within that time."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

import core.auth
from core.models import ApiKey

pytestmark = pytest.mark.django_db


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(core.auth.time, "monotonic", fake)
    return fake


def _read(raw: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/ops/customers/at-risk").status_code


def test_a_revoked_key_stops_working_once_the_memo_expires(make_key, settings, clock):
    settings.API_KEY_CACHE_SECONDS = 2
    key, raw = make_key("read")
    assert _read(raw) == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    clock.now += 1.5
    assert _read(raw) == 200  # still inside the 2 s this process may remember it
    clock.now += 1.0
    assert _read(raw) == 401


def test_with_no_memo_a_revoked_key_is_refused_at_once(make_key, settings, clock):
    settings.API_KEY_CACHE_SECONDS = 0
    key, raw = make_key("read")
    assert _read(raw) == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert _read(raw) == 401


def test_unknown_keys_are_never_remembered(settings, clock):
    settings.API_KEY_CACHE_SECONDS = 60
    for i in range(50):
        assert _read(f"oc_not_a_key_{i}") == 401
    assert core.auth._keys_seen == {}


def test_a_key_created_after_a_miss_works_at_once(settings, clock):
    settings.API_KEY_CACHE_SECONDS = 60
    raw = "oc_" + "k" * 40
    assert _read(raw) == 401
    ApiKey.objects.create(name="late", scope="read", prefix=raw[:12], key_hash=ApiKey.hash_raw_key(raw))
    assert _read(raw) == 200
