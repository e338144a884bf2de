from django.apps import AppConfig


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"

    def ready(self) -> None:
        from customers.integrations import at_risk_checkin_lines, customers_metrics
        from customers.tasks import tenants_realness_changed
        from events.checkin import checkin_section_register
        from events.exporter import metrics_provider_register
        from events.realness import realness_hook_register

        metrics_provider_register("customers", customers_metrics)
        realness_hook_register("customers", tenants_realness_changed)
        checkin_section_register("at_risk_customers", "Top at-risk customers", at_risk_checkin_lines)
