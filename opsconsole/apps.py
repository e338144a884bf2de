from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConsoleConfig(AppConfig):
    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        post_migrate.connect(_distribute_after_migrate, sender=self)


def _distribute_after_migrate(sender, using="default", **kwargs) -> None:
    # On a Citus coordinator every migrate (and so every fresh test database) ends distributed;
    # on plain PostgreSQL this is one catalog probe.
    from opsconsole.citus import distribute

    distribute()
