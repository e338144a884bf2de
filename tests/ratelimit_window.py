"""A key that is over its ingest rate limit until the test lifts it, for watching what each
SDK does with the console's 429.

The console's own limiter (events/ingestion/ratelimit.py) answers, unchanged; only its clock is the
test's: while the key is over, the clock stands still at a second of a minute whose budget is
spent, so every request is refused with the same ``Retry-After``; ``lift()`` moves the clock to
the start of a fresh minute, which then runs in real time, as the next window does. Every
request the limiter judged is recorded with its monotonic time and answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.models import ApiKey
from events.ingestion.ratelimit import ingest_rate_check

# A request a key may make in a fresh window: enough for every SDK's delivery after the lift.
BUDGET_PER_MINUTE = 5


@dataclass
class Attempt:
    at: float  # time.monotonic()
    retry_after: int | None  # None: let through


@dataclass
class OverloadedKey:
    api_key: ApiKey
    retry_after: int
    attempts: list[Attempt] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    lifted_at: float | None = None
    _frozen: datetime | None = None
    _offset: timedelta = timedelta(0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        minute = datetime(2030, 1, 1, tzinfo=UTC)
        self._frozen = minute + timedelta(seconds=60 - self.retry_after)
        ApiKey.objects.filter(pk=self.api_key.pk).update(rate_limit_per_minute=BUDGET_PER_MINUTE)
        self.api_key.refresh_from_db()
        # Spent through the limiter itself, so in whichever counter it keeps (Redis or PostgreSQL).
        for _ in range(BUDGET_PER_MINUTE):
            assert ingest_rate_check(api_key=self.api_key, now=minute) is None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def lift(self) -> None:
        """The next minute begins: the key has its whole budget again."""
        with self._lock:
            assert self._frozen is not None
            fresh = self._frozen.replace(second=0) + timedelta(minutes=1)
            self._offset = fresh - datetime.now(UTC)
            self._frozen = None
            self.lifted_at = time.monotonic()

    def lift_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.lift)
        timer.daemon = True
        timer.start()
        return timer

    def check(self, *, api_key: ApiKey, now: datetime | None = None) -> int | None:
        """events.ingestion.gate's rate check, on this clock, recorded."""
        answer = ingest_rate_check(api_key=api_key, now=self.now())
        self.attempts.append(Attempt(time.monotonic(), answer))
        return answer

    @property
    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if a.retry_after is not None]

    @property
    def let_through(self) -> list[Attempt]:
        return [a for a in self.attempts if a.retry_after is None]

    def waits(self) -> list[float]:
        """Seconds between one refused request and the next request."""
        return [b.at - a.at for a, b in zip(self.attempts, self.attempts[1:], strict=False) if a.retry_after]

    def summary(self) -> str:
        lifted = f"lifted at {self.lifted_at - self.started:.1f} s" if self.lifted_at else "never lifted"
        waits = ", ".join(f"{w:.1f}" for w in self.waits())
        return f"{len(self.refused)} refused, {len(self.let_through)} let through; waits {waits}; {lifted}"
