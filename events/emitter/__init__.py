"""A dependency-free client for sending events to Ops Console.

Standard library only, so a product backend can copy this folder (``events/emitter/``,
relative imports only) into its own code base and ``from emitter import OpsEmitter``.
Events are batched (up to 500 per request and never more than the server's 1 MiB body
limit), each gets an ``event_id`` when it is created,
and a batch is retried with exponential backoff on 429, 5xx and connection
errors: because the ids are fixed before the first attempt, a retry never
stores anything twice.

    emitter = OpsEmitter("https://ops.example.com", api_key="oc_...")
    emitter.replay_started(tenant_id="acme", user_id="u_42", session_id="s_9")
    emitter.export_aborted(tenant_id="acme", user_id="u_42", reason="too slow")
    emitter.flush(timeout=5)

Sending happens on the emitter's own background thread (a daemon, started by the
first ``emit()``): ``emit()`` only puts the event in the bounded queue and returns,
whatever the server does, so a product emitting from its request handlers never
waits on Ops Console, not even while it is down or answering ``Retry-After: 60``.
The thread sends a batch as soon as one is full or ``flush_interval`` seconds after
the oldest queued event, and backs off between failed rounds (honouring the
server's ``Retry-After``). When the process exits, the queue is flushed for at most
``exit_flush_timeout`` seconds; what is still queued then is logged as lost.

What each outcome means to the caller:

- ``emit()`` returning an id: the event is queued (or already delivered). If the
  server is unreachable it stays queued and the thread retries it; ``emit()``
  never raises for that ("queued, will retry").
- ``EventLost`` from ``emit()``: THIS event was not queued and never will be
  sent: the buffer (``max_buffer`` events, counting those being sent) is full,
  or the event alone is over the body limit. Counted in ``dropped``.
- ``flush(timeout=...)`` raising ``DeliveryDeferred``: what was queued could not
  be delivered within the timeout, or a round of sending failed (server down, key
  refused); the events are still queued, nothing is lost.
- ``flush()`` raising ``EventsLost``: the server refused some events for good
  (a 400 with a reason, or 413 for one event on its own) since the last flush;
  they are in ``lost`` with the reason, and every other event went on.

A batch the server refuses as too large (413) is split in halves until it fits,
so one large batch never blocks the queue. The emitter is thread-safe and
fork-safe (a child process starts its own sending thread with an empty queue).
"""

from .client import OpsEmitter
from .errors import DeliveryDeferred, EmitterError, EventLost, EventsLost, LostEvent

__all__ = ["DeliveryDeferred", "EmitterError", "EventLost", "EventsLost", "LostEvent", "OpsEmitter"]
