from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from opsconsole.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Create the periodic task rows from opsconsole/schedules.py that do not exist yet (edits in admin are kept)."

    def handle(self, *args: Any, **options: Any) -> None:
        for entry in SCHEDULES:
            if PeriodicTask.objects.filter(name=entry.name).exists():
                self.stdout.write(f"kept     {entry.name} (already installed; edit it in admin)")
                continue
            minute, hour, day_of_month, month_of_year, day_of_week = entry.crontab.split()
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone=entry.timezone,
            )
            PeriodicTask.objects.create(
                name=entry.name,
                task=entry.task,
                crontab=crontab,
                expire_seconds=entry.expires_seconds,
                description=entry.why,
                kwargs=json.dumps({}),
            )
            self.stdout.write(f"created  {entry.name} ({entry.crontab} {entry.timezone})")
