from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class OpsConsoleConfig(AppConfig):
    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from django.apps import apps

        from core.flavour import flavour_session_configure
        from opsconsole import checks  # noqa: F401  (registers the project's deploy checks)

        # post_migrate is sent once per app that has models (this one has none), after every
        # migration of the run: one such app is the one signal per migrate.
        post_migrate.connect(_distribute_after_migrate, sender=apps.get_app_config("events"))
        connection_created.connect(flavour_session_configure, dispatch_uid="opsconsole.flavour_session")


def _distribute_after_migrate(sender, using="default", **kwargs) -> None:
    # On a Citus coordinator every migrate (and so every fresh test database) ends distributed;
    # on plain PostgreSQL this is one catalog probe.
    from django.conf import settings

    from opsconsole.citus import distribute

    if settings.CITUS_DISTRIBUTE_ON_MIGRATE:
        distribute()
