"""Upgrading a database whose API keys and notifications still belong to the events app: they
move to core without losing a key, an event's link to the key that sent it, a rate window, a
notification and its delivery state, a watched condition's level, or a permission a founder
granted in admin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.apps.registry import Apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import AlertNotification, ApiKey, ConditionAlertState
from events.models import Event, IngestRateWindow

# Committed between steps, as a real upgrade is: on Citus a migration cannot alter a shard that still
# holds the test transaction's unchecked foreign-key triggers.
pytestmark = pytest.mark.django_db(transaction=True)

# The schema before the move: events' last migration that owned the key model, core not yet migrated.
BEFORE = [("events", "0017_morning_digest"), ("core", None)]
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str | None]]) -> Apps:
    """Migrate to the targets; the models of the schema reached."""
    MigrationExecutor(connection).migrate(targets)
    ContentType.objects.clear_cache()
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


def _newest() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _old_install_rows(old: Apps) -> tuple[int, uuid.UUID]:
    """Rows as today's schema holds them, written through that schema's models."""
    content_type = old.get_model("contenttypes", "ContentType")
    permission = old.get_model("auth", "Permission")
    # Migrating back gave the key model's content type (and so its permissions) back to events.
    key_type = content_type.objects.get(app_label="events", model="apikey")
    assert not content_type.objects.filter(app_label="core", model="apikey").exists()
    change, _ = permission.objects.get_or_create(
        content_type=key_type, codename="change_apikey", defaults={"name": "Can change API key"}
    )
    old.get_model("auth", "Group").objects.create(name="key keepers").permissions.add(change)
    key = old.get_model("events", "ApiKey").objects.create(
        name="backend-prod", scope="ingest", prefix="oc_abcdefghi", key_hash="f" * 64, is_automation=True
    )
    event_id = uuid.uuid4()
    old.get_model("events", "Event").objects.create(
        event_id=event_id, tenant_id="acme", user_id="u1", event_type="LOGIN", occurred_at=WHEN, source=key
    )
    old.get_model("events", "IngestRateWindow").objects.create(api_key=key, window_start=WHEN, requests=7)
    old.get_model("events", "AlertNotification").objects.create(
        kind="condition", channel="slack", dedupe_key="condition:infra:db_storage:ok->warning:slack",
        subject="WARNING: Database storage", body="WARNING", target="hooks.slack.com", state="retrying", attempts=2,
    )  # fmt: skip
    old.get_model("events", "ConditionAlertState").objects.create(
        key="infra:db_storage", level="warning", changed_at=WHEN, evaluated_at=WHEN
    )
    return key.pk, event_id


def test_an_upgrade_keeps_every_key_the_events_it_sent_its_rate_windows_and_admin_permissions():
    key_id, event_id = _old_install_rows(_migrate(BEFORE))

    _migrate(_newest())

    key = ApiKey.objects.get(pk=key_id)
    assert (key.name, key.scope, key.prefix, key.is_automation) == ("backend-prod", "ingest", "oc_abcdefghi", True)
    assert Event.objects.get(event_id=event_id).source == key
    assert IngestRateWindow.objects.get(api_key=key).requests == 7
    notification = AlertNotification.objects.get(dedupe_key="condition:infra:db_storage:ok->warning:slack")
    assert (notification.state, notification.attempts, notification.target) == ("retrying", 2, "hooks.slack.com")
    assert ConditionAlertState.objects.get(key="infra:db_storage").level == "warning"
    assert ContentType.objects.get_for_model(AlertNotification).app_label == "core"
    key_type = ContentType.objects.get_for_model(ApiKey)
    assert (key_type.app_label, key_type.model) == ("core", "apikey")
    assert not ContentType.objects.filter(app_label="events", model="apikey").exists()
    granted = Group.objects.get(name="key keepers").permissions.get()
    assert (granted.content_type, granted.codename) == (key_type, "change_apikey")


def test_a_downgrade_gives_the_keys_and_their_permissions_back_to_events():
    ApiKey.objects.create(name="reader", scope="read", prefix="oc_reader0000", key_hash="e" * 64)
    core_type = ContentType.objects.get_for_model(ApiKey)

    old = _migrate(BEFORE)

    assert old.get_model("events", "ApiKey").objects.get(key_hash="e" * 64).name == "reader"
    assert old.get_model("contenttypes", "ContentType").objects.get(pk=core_type.pk).app_label == "events"
    _migrate(_newest())
    assert ContentType.objects.get(pk=core_type.pk).app_label == "core"
