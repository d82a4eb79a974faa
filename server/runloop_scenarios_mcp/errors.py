"""Every failure this server can name, each carrying the sentence an agent can act on.

The hierarchy::

    RunloopMcpError                 base; ``str(err)`` is the agent-facing message
    ├── ConfigurationError          bad flag or environment value (start-up, exit code 2)
    ├── MissingApiKey               no RUNLOOP_API_KEY and no --emulator
    ├── ServerStopping              a call arrived while the server shuts down
    ├── InvalidArgument             a tool argument is wrong; says what to send instead
    │   ├── InvalidCursor           tampered, truncated, foreign or mismatched cursor
    │   └── InvalidChanges          an update's changes do not make a valid scenario
    ├── PreviewRefused              apply refused by the preview token or the person; nothing written
    │   (reason: missing | invalid | expired | used | changes_differ | stale | declined)
    ├── JournalError                the undo journal cannot be written or read
    └── UpstreamError               the Runloop API did not give a usable answer
        ├── UpstreamStatusError     an HTTP error status (status_code, upstream message)
        ├── UpstreamConnectionError the connection failed or dropped
        │   └── UpstreamTimeout     no answer within the timeout
        ├── MalformedResponse       not JSON, truncated, too deep, or not the documented shape
        ├── ResponseTooLarge        a body above --max-response-bytes (not read, not retried)
        └── WriteOutcomeUnknown     the connection broke after an update was sent

Services, the upstream client and tool handlers raise one of these, and :func:`to_tool_message`
turns any exception a handler raises into a message that never contains a secret and never a
traceback (anything unexpected becomes one generic sentence; the traceback goes to the log).
The tool layer words two kinds of refusal itself, before any handler runs: arguments that do not
fit the tool's input schema (``tools/calls.py``: validation errors, invalid Unicode;
``tools/server.py``: unknown or missing arguments), and a write tool called on a read-only server
(``tools/server.py``).
"""

from __future__ import annotations

import json
import re
from typing import Literal

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
MAX_UPSTREAM_DETAIL = 300
MAX_SHOWN = 60
"""Characters of a client's own value that an error message quotes (:func:`shown`)."""
MAX_TOOL_MESSAGE = 1500
"""Characters of a tool error message at most; any longer one is cut (a backstop: messages are short)."""


class RunloopMcpError(Exception):
    """Base of every error this server raises on purpose."""


class ConfigurationError(RunloopMcpError):
    """A flag or environment variable has a value the server cannot run with."""


class MissingApiKey(RunloopMcpError):
    """No API key is configured and the emulator is not in use."""

    def __init__(self) -> None:
        super().__init__(
            "No Runloop API key is configured. Set RUNLOOP_API_KEY in the environment of this MCP server "
            "(in your MCP host's server config, under env), or start the server with --emulator to try it "
            "on built-in sample data."
        )


class ServerStopping(RunloopMcpError):
    """A call arrived after the server began to shut down (its services are closed)."""

    def __init__(self) -> None:
        super().__init__("This server is shutting down; nothing was done. Call again once it has restarted.")


class InvalidArgument(RunloopMcpError):
    """A tool argument is invalid; the message says what is allowed."""


class InvalidCursor(InvalidArgument):
    """A cursor that this server did not issue, was altered, or belongs to another query."""


class InvalidChanges(InvalidArgument):
    """The changes of an update would not produce a valid scenario."""


RefusalReason = Literal["missing", "invalid", "expired", "used", "changes_differ", "stale", "declined"]


class PreviewRefused(RunloopMcpError):
    """An apply was refused by the preview guard; nothing was written."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason


class JournalError(RunloopMcpError):
    """The undo journal cannot be written or read."""


class UpstreamError(RunloopMcpError):
    """The Runloop API did not give a usable answer."""


class UpstreamStatusError(UpstreamError):
    """The Runloop API answered with an HTTP error status."""

    def __init__(self, status_code: int, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class UpstreamConnectionError(UpstreamError):
    """The connection to the Runloop API failed or was dropped."""


class UpstreamTimeout(UpstreamConnectionError):
    """The Runloop API did not answer within the configured timeout."""


class MalformedResponse(UpstreamError):
    """The Runloop API answered with a body that is not the documented JSON."""


class ResponseTooLarge(UpstreamError):
    """The Runloop API's answer is larger than the configured byte cap; it was not read."""


class WriteOutcomeUnknown(UpstreamError):
    """An update was sent but no answer came back, so whether it applied is not known."""


def clean_detail(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Make upstream text safe to show: one line, no control characters, bounded, no secrets."""
    text = _scrub(text, secrets)
    text = _CONTROL.sub(" ", text).replace("\n", " ").replace("\r", " ")
    text = " ".join(text.split())
    if len(text) > MAX_UPSTREAM_DETAIL:
        text = text[: MAX_UPSTREAM_DETAIL - 1] + "…"
    return text


_STATUS_ADVICE: dict[int, str] = {
    400: "The Runloop API rejected the request as invalid",
    401: "The Runloop API rejected the API key (401). Check RUNLOOP_API_KEY in this server's environment",
    403: "The Runloop API refused access (403). The API key lacks permission for this scenario",
    404: "Not found (404). Check the scenario id (ids look like scn_...); list_scenarios shows valid ids",
    408: "The Runloop API timed out the request (408). Try again shortly",
    409: "The Runloop API reported a conflict (409), often a lock held by another change. Try again shortly",
    422: "The Runloop API rejected the request as invalid (422)",
    429: "The Runloop API is rate limiting this key (429) and retries did not get through. Wait and try again",
}


def status_message(status_code: int, detail: str | None) -> str:
    """The agent-facing sentence for an HTTP error status from the Runloop API."""
    if status_code in _STATUS_ADVICE:
        base = _STATUS_ADVICE[status_code]
    elif status_code >= 500:
        base = f"The Runloop API failed with a server error ({status_code}) after retries. Try again later"
    else:
        base = f"The Runloop API answered with HTTP {status_code}"
    # The API's own words are data: quoted as a JSON string, so they never read as part of our advice.
    return (
        f"{base}. The API's error text (quoted data): {json.dumps(detail, ensure_ascii=False)}"
        if detail
        else f"{base}."
    )


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """A value a client sent, quoted for an error message and bounded: ``'abc…' (12,345 characters)``."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
    quoted = json.dumps(value[:limit], ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
    return quoted if len(value) <= limit else f'{quoted[:-1]}…" ({len(value):,} characters)'


def bounded_message(text: str) -> str:
    """``text`` cut to :data:`MAX_TOOL_MESSAGE` characters."""
    return text if len(text) <= MAX_TOOL_MESSAGE else text[: MAX_TOOL_MESSAGE - 24] + "… (message shortened)"


def to_tool_message(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The one place an exception becomes text for an agent: actionable, secret-free, bounded, no traceback."""
    if isinstance(exc, RunloopMcpError):
        return bounded_message(_scrub(str(exc), secrets))
    return "Internal error in runloop-scenarios-mcp; it was logged on the server. Try again, or report it."


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
