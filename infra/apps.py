from django.apps import AppConfig


class InfraConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "infra"

    def ready(self) -> None:
        from events.checkin import checkin_section_register
        from events.exporter import metrics_provider_register
        from infra.integrations import infra_checkin_lines, infra_metrics

        metrics_provider_register("infra", infra_metrics)
        checkin_section_register("infra_days_to_limit", "Infrastructure days to limit", infra_checkin_lines)
