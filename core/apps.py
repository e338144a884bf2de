from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom layer: what every app shares (API keys, notification delivery, the exporter's registry)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    # Admin's heading for these tables (a founder looks for keys and alerts, not for "core").
    verbose_name = "Keys and notifications"
