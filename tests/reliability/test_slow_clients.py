"""Slow clients are absorbed by the proxy (issue 19). *process*

Clients that send their body one byte every 0.25 s (and are still sending when the scrapes end): straight to gunicorn's sync
workers they hold every worker and /metrics stops answering (the failure seen in
production: Prometheus marked the target down); through nginx with the shipped
configuration /metrics keeps answering while they trickle.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import skip_or_fail
from tests.proxy import (  # noqa: F401 (_server_database_url is a fixture)
    PRODUCTION_ENV,
    SCRAPES,
    _server_database_url,
    nginx_proxy,
    scrapes_while_slow_clients_trickle,
    shipped_gunicorn,
)

pytestmark = [pytest.mark.slow, pytest.mark.default_install]


@pytest.mark.parametrize("through", ["nginx", "gunicorn alone"])
def test_metrics_keeps_answering_while_slow_clients_trickle_their_bodies(through, server_database_url):
    if shutil.which("nginx") is None and through == "nginx":
        skip_or_fail("nginx is not installed")
    with shipped_gunicorn(DATABASE_URL=server_database_url, workers=2) as app_port:
        if through == "gunicorn alone":
            # The failure of issue 19: sync workers wait on the slow bodies, the scrape times out.
            outcomes = scrapes_while_slow_clients_trickle(
                f"http://127.0.0.1:{app_port}/metrics", app_port, bearer_token=PRODUCTION_ENV["METRICS_BEARER_TOKEN"]
            )
            assert outcomes and outcomes[-1].startswith("failed: ") and "clients finished" not in outcomes[-1], outcomes
            return
        with nginx_proxy(app_port) as proxy:
            proxy_port = int(proxy.rsplit(":", 1)[1])
            outcomes = scrapes_while_slow_clients_trickle(
                proxy + "/metrics", proxy_port, bearer_token=PRODUCTION_ENV["METRICS_BEARER_TOKEN"]
            )
            assert outcomes == ["200"] * SCRAPES, outcomes
