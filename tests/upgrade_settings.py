"""Settings for the upgrade test only: the project's settings plus tests.upgrade_app, whose
migrations stand for the next release's (tests/reliability/test_upgrade.py)."""

from opsconsole.settings import *  # noqa: F403 (the project's settings, unchanged)
from opsconsole.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.upgrade_app"]
