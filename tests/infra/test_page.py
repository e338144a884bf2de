from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from tests.infra.growth import database_growth_record

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MB = 1024 * 1024


def _growing_database(*, start_mb: float, mb_per_day: float, limit_gb: int) -> None:
    database_growth_record(
        now=NOW, start_bytes=start_mb * MB, bytes_per_day=mb_per_day * MB, limit_gb=limit_gb, events_table_bytes=50 * MB
    )


@time_machine.travel(NOW, tick=False)
def test_the_page_shows_days_to_limit_and_draws_the_projection(staff_client):
    # 100 MB growing 10 MB a day, limit 1 GB: (1024 - 170) / 10 = 85.4 days left on day 7.
    _growing_database(start_mb=100, mb_per_day=10, limit_gb=1)
    response = staff_client.get("/infra/")
    body = response.content.decode()
    assert response.status_code == 200
    assert '<div class="stat" data-testid="days-db_storage">85 days</div>' in body
    assert "Fitted line, projected" in body
    assert "limit 1,024 MB" in body
    assert body.count("<svg") == 2


@time_machine.travel(NOW, tick=False)
def test_a_runway_beyond_a_year_reads_over_a_year_and_the_chart_fits_the_readings(staff_client):
    # 100 MB growing 0.01 MB a day against a 100 GB limit: about 28,000 years away.
    _growing_database(start_mb=100, mb_per_day=0.01, limit_gb=100)
    body = staff_client.get("/infra/").content.decode()
    assert '<div class="stat" data-testid="days-db_storage">over a year</div>' in body
    chart = body.split('aria-labelledby="res-db_storage"')[1].split("</section>")[0]
    # Drawn 60 days ahead, with neither the crossing nor the limit line centuries away and far above.
    assert "Fitted line, projected" in chart
    assert "limit reached" not in chart and "limit 102,400 MB" not in chart
    assert "9 May" in chart  # the projection's end, 60 days after 10 Mar
    today = staff_client.get("/").content.decode()
    assert 'data-testid="days-db_storage">over a year</td>' in today


@time_machine.travel(NOW, tick=False)
def test_one_day_left_is_said_in_the_singular(staff_client):
    _growing_database(start_mb=960, mb_per_day=8, limit_gb=1)
    # (1024 - 1016) / 8 = 1 day left.
    assert '<div class="stat" data-testid="days-db_storage">1 day</div>' in staff_client.get("/infra/").content.decode()
