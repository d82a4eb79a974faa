"""Logging: one line per event on stderr (never stdout, which carries the protocol), secrets redacted."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable


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


def configure_logging(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Send every log record of the process to stderr, one redacted line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless debugging.
    for name in ("httpx", "httpcore", "mcp", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
