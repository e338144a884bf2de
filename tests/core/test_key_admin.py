"""API keys in admin, now core's: marking a key as automation still reclassifies history (core
tells the events app by a signal)."""

from __future__ import annotations

import pytest

from core.models import ApiKey
from events.models import ClassificationState

pytestmark = pytest.mark.django_db


def test_marking_a_key_as_automation_in_admin_bumps_the_rules_version(
    admin_client, make_key, django_capture_on_commit_callbacks
):
    key, _ = make_key(name="ci-runner")
    before = ClassificationState.objects.get_or_create(pk=1)[0].rules_version
    form = {"name": "ci-runner", "scope": "ingest", "is_automation": "on", "allowed_origins": "", "revoked_at_0": "",
            "revoked_at_1": "", "rate_limit_per_minute": ""}  # fmt: skip
    with django_capture_on_commit_callbacks():
        response = admin_client.post(f"/admin/core/apikey/{key.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ApiKey.objects.get(pk=key.pk).is_automation
    assert ClassificationState.objects.get(pk=1).rules_version == before + 1
