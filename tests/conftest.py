"""Shared fixtures. Tests run on PostgreSQL (the CI server, or the embedded one)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from core.models import ApiKey
from core.services import api_key_create

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# The second CI run sets it (a three-node Citus cluster, .ci/run); the session checks it is true.
ON_CITUS = os.environ.get("OPSCONSOLE_TEST_CITUS") == "1"


_DESELECTED_WHERE = {
    True: "on Citus (one server's plans or storage)",
    False: "on plain PostgreSQL (they need Citus)",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what cannot run on this kind of server, and say so: nothing leaves the run unseen."""
    kept, dropped = [], []
    for item in items:
        other = item.get_closest_marker("not_on_citus") if ON_CITUS else item.get_closest_marker("citus")
        (dropped if other else kept).append((item, other))
    if not dropped:
        return
    config.hook.pytest_deselected(items=[item for item, _ in dropped])
    items[:] = [item for item, _ in kept]
    listing = [
        f"{item.nodeid}: {(marker.args[0] if marker.args else marker.kwargs.get('why', '')) if ON_CITUS else 'needs Citus'}"
        for item, marker in dropped
    ]
    if hasattr(config, "workeroutput"):
        # A pytest-xdist worker: its terminal is not shown, so the controller prints the list once.
        config.workeroutput["deselected_listing"] = listing
    else:
        _deselected_write(config, listing)


def _deselected_write(config: pytest.Config, listing: list[str]) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and listing:
        reporter.write_line(f"{len(listing)} test(s) deselected {_DESELECTED_WHERE[ON_CITUS]}:")
        for line in listing:
            reporter.write_line(f"  {line}")


_worker_listings: list[list[str]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Each xdist worker collected the whole suite; every one reports the same deselection."""
    _worker_listings.append(getattr(node, "workeroutput", {}).get("deselected_listing", []))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _worker_listings:
        _deselected_write(config, _worker_listings[0])


@pytest.fixture(scope="session", autouse=True)
def _server_kind_checked(django_db_setup: Any, django_db_blocker: Any) -> None:
    """OPSCONSOLE_TEST_CITUS must say what the database is, or the deselection above would lie."""
    from core.flavour import CITUS, flavour

    with django_db_blocker.unblock():
        actual = flavour() is CITUS
    if actual != ON_CITUS:
        pytest.exit(
            f"OPSCONSOLE_TEST_CITUS={int(ON_CITUS)} but the test database {'is' if actual else 'is not'} Citus.", 2
        )


def skip_or_fail(reason: str) -> None:
    """A missing service skips the test with the reason, or fails it under REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """URL of a reachable Redis, or skip (fail under REQUIRE_SERVICES=1)."""
    import redis

    url = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        skip_or_fail("no Redis configured (set REDIS_URL=redis://127.0.0.1:6379/0)")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {url} is unreachable: {exc}")
    return url


@pytest.fixture
def make_key(db: Any) -> Callable[..., tuple[ApiKey, str]]:
    def _make(scope: str = "ingest", name: str = "test", **kwargs: Any) -> tuple[ApiKey, str]:
        return api_key_create(name=name, scope=scope, **kwargs)

    return _make


def _key_client(make_key: Callable[..., tuple[ApiKey, str]], scope: str, name: str) -> APIClient:
    """An API client sending a new key of ``scope`` as its bearer token."""
    _, raw = make_key(scope, name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def ingest_client(make_key: Callable[..., tuple[ApiKey, str]]) -> APIClient:
    return _key_client(make_key, "ingest", "backend")


@pytest.fixture
def read_client(make_key: Callable[..., tuple[ApiKey, str]]) -> APIClient:
    return _key_client(make_key, "read", "dashboard")


@pytest.fixture
def write_client(make_key: Callable[..., tuple[ApiKey, str]]) -> APIClient:
    return _key_client(make_key, "write", "founder-scripts")


@pytest.fixture
def staff_user(db: Any) -> Any:
    return get_user_model().objects.create_user("founder", "founder@example.com", "pw-founder-1", is_staff=True)


def owner_login(client: Any = None) -> Any:
    """``client`` (a new test client by default) logged in as the founder in admin: a new superuser
    named owner, the name admin's records show."""
    client = client if client is not None else Client()
    client.force_login(get_user_model().objects.create_superuser("owner", "owner@example.com", "pw-owner-1"))
    return client


@pytest.fixture
def staff_client(staff_user: Any) -> APIClient:
    client = APIClient()
    client.force_login(staff_user)
    return client


def _reference_data_ensure() -> None:
    """Re-create the rows a fresh install is seeded with (each app's defaults module).

    A ``transaction=True`` test ends by flushing every table, the seeded rows included;
    tests that run after it would otherwise see an empty registry.
    """
    from django.apps import apps

    from customers.defaults import customers_defaults_seed
    from events.defaults import events_defaults_seed
    from infra.defaults import infra_defaults_seed
    from playbooks.defaults import playbooks_defaults_seed

    events_defaults_seed(apps)
    customers_defaults_seed(apps)
    infra_defaults_seed(apps)
    playbooks_defaults_seed(apps)


@pytest.fixture(autouse=True)
def _reference_data(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", bool(marker.args and marker.args[0]))
    request.getfixturevalue("transactional_db" if transactional else "db")
    _reference_data_ensure()


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """API answers are cached per recompute in the process's cache; tests write the cache
    tables directly, so each test starts with an empty one."""
    from django.core.cache import cache

    import core.auth
    import customers.read_cache

    cache.clear()
    customers.read_cache.process_reads_forget()
    core.auth._keys_seen.clear()


@pytest.fixture(scope="session", autouse=True)
def _request_counts_dropped_at_exit() -> Iterator[None]:
    """The web process writes its pending API request counts at exit (infra/middleware.py);
    in tests the test database is gone by then, so the counts are dropped instead."""
    yield
    from infra.middleware import request_counter

    request_counter.reset()
