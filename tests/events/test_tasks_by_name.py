"""Tasks a lower module queues by name are the registered tasks those names say."""

from __future__ import annotations

import pytest
from celery import current_app

from core.notifications import DELIVER_TASK
from core.tasks import task_queue
from events.rules import RECLASSIFY_TASK
from events.tasks import alert_notification_deliver_task, events_reclassify_task


def test_each_name_queued_by_name_is_its_task() -> None:
    # shared_task gives a proxy of the registered task: the same name, the same function.
    assert current_app.tasks[RECLASSIFY_TASK].name == events_reclassify_task.name == RECLASSIFY_TASK
    assert current_app.tasks[RECLASSIFY_TASK].run is events_reclassify_task.run
    assert current_app.tasks[DELIVER_TASK].name == alert_notification_deliver_task.name == DELIVER_TASK
    assert current_app.tasks[DELIVER_TASK].run is alert_notification_deliver_task.run


def test_an_unknown_task_name_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(LookupError, match=r"no Celery task is registered as 'events\.tasks\.nothing_task'"):
        task_queue("events.tasks.nothing_task")
