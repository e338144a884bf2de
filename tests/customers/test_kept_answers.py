"""Read API answers served from their kept JSON before DRF's dispatch (customers/kept_answers.py):
the same answer DRF gives, to the same callers only."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from customers import read_cache
from customers.apis import CustomerListApi
from customers.founder_actions import answers_changed
from customers.models import MetricsState
from playbooks.customer_apis import CustomerAtRiskApi
from tests.customers.conftest import RANKED_TENANTS, metrics_rows_store

pytestmark = pytest.mark.django_db

PATHS = {"/ops/customers/at-risk?limit=3": CustomerAtRiskApi, "/ops/customers?page_size=2": CustomerListApi}


@pytest.fixture
def keyed(make_key) -> tuple[Any, APIClient]:
    metrics_rows_store(RANKED_TENANTS)
    api_key, raw = make_key("read", "dashboard")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_key, client


@pytest.mark.parametrize("path", PATHS)
def test_a_kept_answer_is_the_answer_drf_gave(keyed, path):
    _, client = keyed
    first = client.get(path)  # built and kept through DRF
    assert first.status_code == 200 and first.json()
    request = RequestFactory().get(path, HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"])
    assert PATHS[path]()._kept_answer(request) == first.content  # what the next GET is served
    again = client.get(path)
    assert again.status_code == 200 and again.content == first.content
    for header in ("Content-Type", "Allow", "Vary"):
        assert again[header] == first[header], header


@pytest.mark.parametrize("path", PATHS)
def test_a_revoked_key_is_refused_though_the_answer_is_kept(keyed, path):
    api_key, client = keyed
    assert client.get(path).status_code == 200
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    response = client.get(path)
    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has been revoked."}


@pytest.mark.parametrize("path", PATHS)
def test_an_ingest_key_is_refused_though_the_answer_is_kept(keyed, make_key, path):
    _, client = keyed
    assert client.get(path).status_code == 200
    _, raw = make_key("ingest", "backend")
    ingest = APIClient()
    ingest.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = ingest.get(path)
    assert response.status_code == 403 and "scope 'ingest'" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
def test_a_staff_session_and_a_browser_get_the_kept_answer_as_before(keyed, staff_client, path):
    _, client = keyed
    kept = client.get(path).content
    assert staff_client.get(path).content == kept
    browsable = client.get(path, HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and browsable["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("query", ["format=api", "%66ormat=api"])
def test_a_format_named_in_the_query_however_spelled_is_drfs_to_answer(keyed, query):
    _, client = keyed
    assert client.get("/ops/customers/at-risk").status_code == 200  # the JSON answer kept
    browsable = client.get(f"/ops/customers/at-risk?{query}")
    assert browsable.status_code == 200 and browsable["Content-Type"].startswith("text/html")


def test_the_list_is_kept_per_host_since_its_page_links_name_it(keyed, settings):
    _, client = keyed
    settings.ALLOWED_HOSTS = ["console.example.com", "ops.example.org"]
    here = client.get("/ops/customers?page_size=2", HTTP_HOST="console.example.com")
    there = client.get("/ops/customers?page_size=2", HTTP_HOST="ops.example.org")
    again = client.get("/ops/customers?page_size=2", HTTP_HOST="console.example.com")
    assert here.json()["next"].startswith("http://console.example.com/ops/customers?")
    assert there.json()["next"].startswith("http://ops.example.org/ops/customers?")
    assert again.content == here.content


def test_an_answer_the_cache_drops_is_built_again_at_the_next_version_read(keyed, settings):
    from django.core.cache import cache

    from customers.models import TenantMetrics

    _, client = keyed
    settings.METRICS_VERSION_CHECK_SECONDS = 3600
    first = client.get("/ops/customers/at-risk").json()
    assert client.get("/ops/customers/at-risk").json() == first  # served kept
    # A write that does not move the version shows once the kept answer expires from the cache
    # (API_CACHE_SECONDS, here cleared) and this process reads the version again.
    TenantMetrics.objects.filter(tenant_id="initech").update(risk_level=None, risk_signal_strength=1)
    cache.clear()
    settings.METRICS_VERSION_CHECK_SECONDS = 0
    assert "initech" not in [row["tenant_id"] for row in client.get("/ops/customers/at-risk").json()]
    assert "initech" in [row["tenant_id"] for row in first]


def _dropped(key: str) -> None:
    """The cache drops the answer kept for the current version (its API_CACHE_SECONDS ran out)."""
    cache.delete(read_cache._cache_key(f"{key}|{read_cache.metrics_version()}"))
    read_cache.metrics_version_forget()  # and the process has checked the version since


def test_while_one_caller_builds_a_dropped_answer_again_the_others_get_its_bytes_of_the_same_version():
    read_cache.cached_per_recompute("answer:json", lambda: b"first")
    assert read_cache.kept_per_recompute("answer:json") == b"first"
    _dropped("answer:json")
    assert read_cache.kept_per_recompute("answer:json") is None  # this caller builds it
    assert read_cache.kept_per_recompute("answer:json") == b"first"  # the others meanwhile
    read_cache.cached_per_recompute("answer:json", lambda: b"second")
    assert read_cache.kept_per_recompute("answer:json") == b"second"


def test_a_dropped_answer_of_an_older_version_is_never_served():
    MetricsState.objects.get_or_create(id=1)  # the row the version is read from, as a first recompute leaves it
    read_cache.metrics_version_forget()
    read_cache.cached_per_recompute("answer:json", lambda: b"first")
    assert read_cache.kept_per_recompute("answer:json") == b"first"
    answers_changed()
    assert read_cache.kept_per_recompute("answer:json") is None
    assert read_cache.kept_per_recompute("answer:json") is None
