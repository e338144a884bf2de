"""The soak's load: senders posting batches of fresh native events over keep-alive connections,
paced to a rate, each failed request resent with the same event ids (as the emitter does)."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlparse

from bench.common import EVENT_MIX, now_utc

TENANTS = 200


@dataclass
class SendTotals:
    batches: int = 0
    sent: int = 0  # events in batches that got a final 200
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    gave_up: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def _event_templates(count: int, seed: int) -> list[str]:
    """JSON object bodies without their event_id: a seeded mix of tenants, sessions and types
    over the last 20 days. Each send adds a fresh event_id, so every event is new."""
    rng = random.Random(seed)
    now = now_utc()
    types = [name for name, _ in EVENT_MIX]
    weights = [weight for _, weight in EVENT_MIX]
    templates = []
    for _ in range(count):
        tenant = f"t{min(int(rng.paretovariate(1.2)), TENANTS) - 1:04d}"
        occurred = now - timedelta(seconds=rng.uniform(60, 20 * 86400))
        templates.append(
            json.dumps(
                {
                    "tenant_id": tenant,
                    "user_id": f"{tenant}-u{rng.randint(0, 20)}",
                    "session_id": f"{tenant}-s{rng.randint(0, 400)}",
                    "event_type": rng.choices(types, weights)[0],
                    "occurred_at": occurred.isoformat(),
                }
            )[1:-1]
        )
    return templates


class Sender:
    """``senders`` keep-alive connections posting batches of fresh events, paced to ``rate``
    events/s (unpaced when None). A failed request is resent with the same ids."""

    def __init__(self, url: str, key: str, *, senders: int, batch: int, seed: int, id_prefix: str = "") -> None:
        self.url, self.key, self.senders, self.batch = urlparse(url), key, senders, batch
        self.id_prefix = id_prefix
        self.templates = _event_templates(5000, seed)
        self.totals = SendTotals()
        self.lock = threading.Lock()

    def _event_id(self) -> str:
        # uuid4's first two groups replaced by the prefix: still a UUID, and findable by it.
        return self.id_prefix + str(uuid.uuid4())[len(self.id_prefix) :]

    def _body(self, rng: random.Random) -> bytes:
        start = rng.randrange(len(self.templates) - self.batch)
        items = ",".join(
            f'{{"event_id":"{self._event_id()}",{template}}}' for template in self.templates[start : start + self.batch]
        )
        return f'{{"events":[{items}]}}'.encode()

    def _post_until_answered(
        self, conn: http.client.HTTPConnection, body: bytes
    ) -> tuple[dict[str, object] | None, http.client.HTTPConnection]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        for attempt in range(30):
            try:
                conn.request("POST", "/api/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
                status, payload = "connection_error", b""
            with self.lock:
                self.totals.statuses[status] = self.totals.statuses.get(status, 0) + 1
                if status != "200":
                    self.totals.retries += 1
            if status == "200":
                return json.loads(payload), conn
            time.sleep(min(0.1 * 2**attempt, 5.0))
        return None, conn

    def run(self, *, seconds: float, rate: float | None) -> float:
        """Send for ``seconds``; returns the elapsed time."""
        stop_at = time.monotonic() + seconds
        started = time.monotonic()
        counter = iter(range(10**12))

        def worker(index: int) -> None:
            rng = random.Random(index)
            conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
            while True:
                with self.lock:
                    number = next(counter)
                if rate:
                    due = started + number * self.batch / rate
                    if due >= stop_at:
                        break
                    time.sleep(max(0.0, due - time.monotonic()))
                elif time.monotonic() >= stop_at:
                    break
                receipt, conn = self._post_until_answered(conn, self._body(rng))
                with self.lock:
                    if receipt is None:
                        self.totals.gave_up += 1
                        continue
                    self.totals.batches += 1
                    self.totals.sent += self.batch
                    self.totals.accepted += int(receipt["accepted"])  # type: ignore[call-overload]
                    self.totals.duplicates += int(receipt["duplicates"])  # type: ignore[call-overload]
                    self.totals.rejected += len(receipt["rejected"])  # type: ignore[arg-type]
            conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started
