from django.apps import AppConfig


class ValidationConfig(AppConfig):
    """The walk-forward backtest of the risk signal and the weights learned from the founder's churns.

    Sits above playbooks (it reads the recorded churns) and below the console pages; it
    reaches the metrics engine only through validation/engine.py.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "validation"
