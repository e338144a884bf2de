from django.apps import AppConfig


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"

    def ready(self) -> None:
        from core.exporter import metrics_provider_register
        from customers.integrations import customers_metrics
        from customers.tasks import tenants_realness_changed
        from events.realness import realness_hook_register

        metrics_provider_register("customers", customers_metrics)
        realness_hook_register("customers", tenants_realness_changed)
