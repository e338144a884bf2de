from typing import Any

from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        from core.exporter import metrics_provider_register
        from core.signals import api_key_automation_changed
        from events.integrations import north_star_metrics

        metrics_provider_register("north_star", north_star_metrics)
        api_key_automation_changed.connect(_automation_key_changed, dispatch_uid="events.automation_key_changed")


def _automation_key_changed(**kwargs: Any) -> None:
    """An automation key's events count (or stop counting) as real users: reclassify history."""
    from events.rules import classification_rules_changed

    classification_rules_changed()
