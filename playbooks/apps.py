from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "playbooks"

    def ready(self) -> None:
        # What the customers answers and the Customer page show of playbooks (customers never imports playbooks).
        from customers.extensions import (
            customer_panel_register,
            expansion_candidates_provider_register,
            tenant_follow_ups_provider_register,
            tenant_playbooks_provider_register,
        )
        from playbooks.followup import at_risk_follow_ups
        from playbooks.selectors import customer_playbook_panel, expansion_candidates, tenant_matched_playbooks

        tenant_playbooks_provider_register(tenant_matched_playbooks)
        expansion_candidates_provider_register(expansion_candidates)
        tenant_follow_ups_provider_register(at_risk_follow_ups)
        # The follow-up and the founder's forms go on the page's first screen, the longer record below.
        customer_panel_register(
            "playbooks",
            "playbooks/partials/customer_panel.html",
            customer_playbook_panel,
            actions_template="playbooks/partials/customer_actions.html",
        )
