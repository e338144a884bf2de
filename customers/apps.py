from django.apps import AppConfig


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"

    def ready(self) -> None:
        from customers.integrations import at_risk_checkin_lines, customers_metrics
        from events.checkin import checkin_section_register
        from events.exporter import metrics_provider_register

        metrics_provider_register("customers", customers_metrics)
        checkin_section_register("at_risk_customers", "Top at-risk customers", at_risk_checkin_lines)
