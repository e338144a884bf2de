from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "playbooks"

    def ready(self) -> None:
        # What the customers answers and the Customer page show of playbooks (customers never imports playbooks).
        from customers.extensions import customer_panel_register, tenant_playbooks_provider_register
        from playbooks.selectors import customer_playbook_panel, tenant_matched_playbooks

        tenant_playbooks_provider_register(tenant_matched_playbooks)
        customer_panel_register("playbooks", "playbooks/partials/customer_panel.html", customer_playbook_panel)
