"""Celery tasks of the project package: the ones that read every app (as the Today page does)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="opsconsole.morning_digest", ignore_result=True)
def morning_digest_task() -> str:
    # Idempotent (the day's row is claimed once), so a run lost with a worker is simply the next one.
    from opsconsole.digest import morning_digest_send

    return morning_digest_send()


# The name is the one installed beat rows carry (install_schedules keeps existing rows): the task
# moved here with the check-in, which reads several apps.
@shared_task(name="events.tasks.weekly_checkin_task")
def weekly_checkin_task() -> int:
    # Idempotent (one notification per channel and ISO week), so a second run sends nothing.
    from opsconsole.checkin import weekly_checkin_send

    return len(weekly_checkin_send())
