from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class OpsConsoleConfig(AppConfig):
    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from events.cluster import citus_session_configure

        post_migrate.connect(_distribute_after_migrate, sender=self)
        connection_created.connect(citus_session_configure, dispatch_uid="opsconsole.citus_session")


def _distribute_after_migrate(sender, using="default", **kwargs) -> None:
    # On a Citus coordinator every migrate (and so every fresh test database) ends distributed;
    # on plain PostgreSQL this is one catalog probe.
    from django.conf import settings

    from opsconsole.citus import distribute

    if settings.CITUS_DISTRIBUTE_ON_MIGRATE:
        distribute()
