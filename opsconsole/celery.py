"""The Celery application. Tasks live in each app's ``tasks.py``; schedules in
``opsconsole/schedules.py`` (installed as django-celery-beat rows)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
