from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "playbooks"

    def ready(self) -> None:
        from events.checkin import checkin_section_register
        from playbooks.integrations import at_risk_follow_up_checkin_lines

        # Replaces the customers app's section of the same key (it is registered first).
        checkin_section_register("at_risk_customers", "Top at-risk customers", at_risk_follow_up_checkin_lines)
