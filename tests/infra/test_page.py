from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from infra.models import InfraLimitSettings, InfraSnapshot

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MB = 1024 * 1024


@time_machine.travel(NOW, tick=False)
def test_the_page_shows_days_to_limit_and_draws_the_projection(staff_client):
    # 100 MB growing 10 MB a day, limit 1 GB: (1024 - 170) / 10 = 85.4 days left on day 7.
    for day in range(8):
        InfraSnapshot.objects.create(
            taken_at=NOW - timedelta(days=7 - day),
            db_size_bytes=(100 + 10 * day) * MB,
            events_table_bytes=50 * MB,
            events_received_24h=1000,
            api_requests_24h=0,
        )
    limits = InfraLimitSettings.objects.get()
    limits.db_storage_limit_gb = 1
    limits.save()
    response = staff_client.get("/infra/")
    body = response.content.decode()
    assert response.status_code == 200
    assert '<div class="stat" data-testid="days-db_storage">85 days</div>' in body
    assert "Fitted line, projected" in body
    assert "limit 1,024 MB" in body
    assert body.count("<svg") == 2
