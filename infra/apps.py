from django.apps import AppConfig


class InfraConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "infra"

    def ready(self) -> None:
        from core.exporter import metrics_provider_register
        from infra.integrations import infra_metrics

        metrics_provider_register("infra", infra_metrics)
