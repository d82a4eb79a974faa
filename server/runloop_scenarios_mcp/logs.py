"""Logging: one line per event on stderr (never stdout, which carries the protocol), secrets redacted, rate-limited.

No client can flood stderr: :class:`RateLimitedHandler` lets through at most :data:`PER_KIND` lines of one
kind (logger, level and message template, numbers ignored) and :data:`IN_TOTAL` lines in all per
:data:`WINDOW` seconds, a traceback only with the first line of its kind in a window, and reports what it
held back in one ``log_suppressed`` line when the window is over.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TextIO


class RedactingFormatter(logging.Formatter):
    """``2026-11-24T17:00:00Z INFO logger message``, one line, with every secret value replaced."""

    converter = time.gmtime  # type: ignore[assignment]

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ")
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text.replace("\r", "\\r").replace("\n", "\\n")


WINDOW = 10.0
"""Seconds of one rate-limit window."""
PER_KIND = 20
"""Lines of one kind per window (ten times as many at DEBUG)."""
IN_TOTAL = 200
"""Lines in all per window (ten times as many at DEBUG)."""
_NUMBERS = re.compile(r"[0-9a-fA-F]{6,}|\d+")


class RateLimitedHandler(logging.StreamHandler[TextIO]):
    """A stream handler that drops lines beyond the per-kind and total budgets of each window, and says so."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        per_kind: int = PER_KIND,
        in_total: int = IN_TOTAL,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream)
        self.per_kind, self.in_total, self.window = per_kind, in_total, window
        self._clock = clock
        self._guard = threading.Lock()
        self._started = clock()
        self._seen: Counter[tuple[str, int, str]] = Counter()
        self._total = 0
        self._held: Counter[tuple[str, int, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            summary = self._roll()
            kind = (record.name, record.levelno, _NUMBERS.sub("#", str(record.msg))[:120])
            self._seen[kind] += 1
            allowed = self._seen[kind] <= self.per_kind and self._total < self.in_total
            if allowed:
                self._total += 1  # lines shown: one kind's flood does not use up the others' room
            else:
                self._held[kind] += 1
        if summary is not None:
            super().emit(summary)
        if not allowed:
            return
        if record.exc_info and self._seen[kind] > 1:  # the traceback was shown with the first line of its kind
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        super().emit(record)

    def _roll(self) -> logging.LogRecord | None:
        """Start a new window when the current one is over; the line reporting what was held back, if any."""
        now = self._clock()
        if now - self._started < self.window:
            return None
        held, kinds = sum(self._held.values()), self._held.most_common(1)
        self._started, self._total = now, 0
        self._seen.clear()
        self._held.clear()
        if not held:
            return None
        (name, _level, template), count = kinds[0]
        return logging.makeLogRecord(
            {
                "name": __name__,
                "levelno": logging.WARNING,
                "levelname": "WARNING",
                "msg": "log_suppressed lines=%d window_s=%g most=%s count=%d message=%r",
                "args": (held, self.window, name, count, template[:80]),
            }
        )


def configure_logging(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Send every log record of the process to stderr, one redacted line each, rate-limited."""
    scale = 10 if level == "DEBUG" else 1
    handler = RateLimitedHandler(sys.stderr, per_kind=PER_KIND * scale, in_total=IN_TOTAL * scale)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless debugging.
    for name in ("httpx", "httpcore", "mcp", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
