"""Settings: one frozen object built from flags and environment, fail-closed, secrets opaque.

Precedence: command-line flag, then environment variable, then default. Every value is checked
here, once, so nothing deeper in the server ever sees a half-valid configuration.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import SecretStr

from runloop_scenarios_mcp.errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.runloop.ai"
DEFAULT_MAX_TOKENS = 4000
DEFAULT_MAX_TOKENS_CAP = 20000
MIN_MAX_TOKENS = 500
"""The smallest page budget: enough for the result envelope, a hint and one clipped scenario."""
MAX_MAX_TOKENS_CAP = 1_000_000
"""The largest --max-tokens-cap accepted."""
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_RETRIES = 5
"""As the official SDKs (docs/upstream-api.md, "Retries")."""
DEFAULT_RETRY_INITIAL_DELAY = 1.0
"""Seconds before the first retry, doubling each time (as the official SDKs)."""
DEFAULT_RETRY_BUDGET = 120.0
"""Seconds one call may spend waiting between retries, so every tool call ends in bounded time."""
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Bytes one upstream answer may hold (decoded). The largest page this server asks for is about 2 MB."""
DEFAULT_CALL_TIMEOUT = 40.0
"""Seconds one tool call may spend on the Runloop API, retries and their waits included (a person's
confirmation is not counted). Below the 60 s that MCP clients commonly wait for an answer."""
DEFAULT_HTTP_PORT = 8000
DEFAULT_HTTP_READ_TIMEOUT = 10.0
"""Seconds an HTTP client has to send a request's headers, and again its body (--transport http)."""
DEFAULT_HTTP_MAX_CONNECTIONS = 256
"""Open HTTP connections at most; past it the oldest that has not sent a whole request is closed."""
DEFAULT_HTTP_MAX_SESSIONS = 100
"""Open 2025-11-25 (legacy) sessions at most; past it a new one is refused with 503."""
DEFAULT_HTTP_SESSION_IDLE = 600.0
"""Seconds a legacy session may stay without any request or open stream before it is closed."""
DEFAULT_CONFIRM_TIMEOUT = 300.0
"""Seconds to wait for a person to answer the confirmation (elicitation) before refusing to write."""
DEFAULT_PREVIEW_TTL = 600
"""Seconds a preview token stays valid."""
DEFAULT_WRITE_LOCK_WAIT = 120.0
"""Seconds an apply waits for another process's apply of the same scenario (the journal database's lock)."""
MIN_SECRET_LENGTH = 16
"""The shortest RUNLOOP_MCP_SECRET key accepted (each one, when it is a comma-separated list)."""
EMULATOR_API_KEY = "emulator-key"
"""The bearer token the in-process emulator is sent; not a secret, there is no account behind it."""

Transport = Literal["stdio", "http"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
DEFAULT_LOG_LEVEL: LogLevel = "INFO"


def default_journal_path(env: Mapping[str, str], *, emulator: bool = False) -> Path:
    """Where the undo journal lives when not configured: the user's XDG state directory.

    The emulator's practice writes go to a journal of their own, so they never mix with real ones.
    """
    state_home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    name = "emulator-journal.jsonl" if emulator else "journal.jsonl"
    return Path(state_home) / "runloop-scenarios-mcp" / name


def default_database_url(journal_path: Path) -> str:
    """The journal database when RUNLOOP_MCP_DATABASE_URL is not set: a SQLite file beside the JSON Lines journal.

    ``journal.sqlite3`` in the user's state directory by default (``emulator-journal.sqlite3`` with --emulator),
    and beside RUNLOOP_MCP_JOURNAL when that names a journal of its own, so such a setup keeps its own database.
    """
    return "sqlite://" + str(journal_path.expanduser().absolute().with_suffix(".sqlite3"))


DatabaseKind = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked RUNLOOP_MCP_DATABASE_URL: SQLite with its file, or PostgreSQL with the URL for psycopg."""

    kind: DatabaseKind
    url: str = field(repr=False)
    path: Path | None = None
    """The SQLite file (None for PostgreSQL)."""

    @property
    def shown(self) -> str:
        """The URL with any password replaced by ``***``: what messages and logs may say."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """``url`` with the password of its user part (if any) replaced by ``***``."""
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:
        password = None
    if password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()


def parse_database_url(url: str) -> DatabaseUrl:
    """``sqlite:///PATH`` or ``postgresql://...``; raises ConfigurationError with the fix, never echoing a password."""
    shown = redact_url(url)
    scheme, _, rest = url.partition(":")
    if scheme.lower() == "sqlite":
        parts = urlsplit(url)
        path = parts.path
        if parts.netloc or parts.query or parts.fragment or path in ("", "/") or ":memory:" in path:
            raise ConfigurationError(
                f"RUNLOOP_MCP_DATABASE_URL={shown!r} is not a SQLite file URL; use sqlite:///ABSOLUTE/PATH.sqlite3"
            )
        while path.startswith("//"):  # sqlite:////abs (SQLAlchemy's spelling) names the same file
            path = path[1:]
        return DatabaseUrl("sqlite", url, Path(path))
    if scheme.lower() in ("postgresql", "postgres"):
        if not rest.startswith("//"):
            raise ConfigurationError(
                f"RUNLOOP_MCP_DATABASE_URL={shown!r} is not a PostgreSQL URL; use postgresql://USER@HOST:5432/DATABASE"
            )
        if importlib.util.find_spec("psycopg") is None:
            raise ConfigurationError(
                "RUNLOOP_MCP_DATABASE_URL is a PostgreSQL URL, but psycopg is not installed: "
                "pip install 'runloop-scenarios-mcp[postgres]'"
            )
        return DatabaseUrl("postgresql", url)
    raise ConfigurationError(
        f"RUNLOOP_MCP_DATABASE_URL={shown!r} is neither sqlite:///PATH nor postgresql://...; use e.g. "
        "sqlite:///var/lib/runloop-scenarios-mcp/journal.sqlite3 or postgresql://USER@HOST:5432/DATABASE"
    )


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with. Build it with :func:`settings_from` or directly in tests."""

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    emulator: bool = False
    read_only: bool = False
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = DEFAULT_HTTP_PORT
    http_token: SecretStr | None = None
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    max_tokens_cap: int = DEFAULT_MAX_TOKENS_CAP
    secret: SecretStr = field(default_factory=lambda: SecretStr(secrets.token_hex(32)))
    """``RUNLOOP_MCP_SECRET`` as given: one key, or a comma-separated list for rotation (see :attr:`secrets`)."""
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_initial_delay: float = DEFAULT_RETRY_INITIAL_DELAY
    retry_budget: float = DEFAULT_RETRY_BUDGET
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Bytes one upstream answer may hold; a larger one is a clear error, not retried."""
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    """Seconds one tool call may spend on the Runloop API, retries included."""
    http_read_timeout: float = DEFAULT_HTTP_READ_TIMEOUT
    http_max_connections: int = DEFAULT_HTTP_MAX_CONNECTIONS
    http_max_sessions: int = DEFAULT_HTTP_MAX_SESSIONS
    http_session_idle: float = DEFAULT_HTTP_SESSION_IDLE
    log_level: LogLevel = DEFAULT_LOG_LEVEL
    journal_path: Path = field(default_factory=lambda: default_journal_path(os.environ))
    """The JSON Lines journal of earlier versions (RUNLOOP_MCP_JOURNAL), imported once into the database."""
    database_url: SecretStr | None = None
    """RUNLOOP_MCP_DATABASE_URL (it may hold a password); None: a SQLite file beside journal_path."""
    preview_ttl: int = DEFAULT_PREVIEW_TTL
    """Seconds a preview token stays valid."""
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT
    """Seconds to wait for a person to answer the confirmation (elicitation) before refusing to write."""

    def __post_init__(self) -> None:
        _check(self)

    @property
    def secrets(self) -> tuple[SecretStr, ...]:
        """The sealing keys (cursors, preview tokens, the SDK's ``requestState``): the first signs, all verify."""
        return tuple(SecretStr(key) for key in split_secret(self.secret.get_secret_value()))

    @property
    def database(self) -> DatabaseUrl:
        """Where the journal lives, checked: RUNLOOP_MCP_DATABASE_URL, else the default beside journal_path."""
        if self.database_url is None:
            return parse_database_url(default_database_url(self.journal_path))
        return parse_database_url(self.database_url.get_secret_value())

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in any output (results, errors, logs): longest first, every key alone."""
        values = [self.api_key, self.http_token, self.secret, *self.secrets]
        found = {v.get_secret_value() for v in values if v is not None and v.get_secret_value()}
        if self.database_url is not None and (password := _password(self.database_url.get_secret_value())):
            found.add(password)
        return tuple(sorted(found, key=len, reverse=True))


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def split_secret(value: str) -> tuple[str, ...]:
    """The keys of a ``RUNLOOP_MCP_SECRET`` value: comma-separated, blanks around each key dropped."""
    return tuple(key.strip() for key in value.split(","))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(s: Settings) -> None:
    url = urlsplit(s.base_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigurationError(f"RUNLOOP_BASE_URL={s.base_url!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}")
    if s.api_key is not None and not s.api_key.get_secret_value().strip():
        raise ConfigurationError("RUNLOOP_API_KEY is set but empty; set it to your Runloop API key or unset it")
    if not MIN_MAX_TOKENS <= s.max_tokens_cap <= MAX_MAX_TOKENS_CAP:
        raise ConfigurationError(
            f"--max-tokens-cap must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS_CAP}; got {s.max_tokens_cap}"
        )
    if not MIN_MAX_TOKENS <= s.default_max_tokens <= s.max_tokens_cap:
        raise ConfigurationError(
            f"--default-max-tokens must be between {MIN_MAX_TOKENS} and --max-tokens-cap ({s.max_tokens_cap}); "
            f"got {s.default_max_tokens}"
        )
    if not 0 < s.timeout <= 600:
        raise ConfigurationError(f"--timeout must be a number of seconds in (0, 600]; got {s.timeout}")
    if not 0 < s.connect_timeout <= 600:
        raise ConfigurationError(f"the connect timeout must be in (0, 600] seconds; got {s.connect_timeout}")
    if not 10 <= s.preview_ttl <= 86400:
        raise ConfigurationError(f"the preview token lifetime must be 10..86400 seconds; got {s.preview_ttl}")
    if not 0 < s.confirm_timeout <= 3600:
        raise ConfigurationError(f"the confirmation timeout must be in (0, 3600] seconds; got {s.confirm_timeout}")
    if not 0 <= s.max_retries <= 10:
        raise ConfigurationError(f"--max-retries must be between 0 and 10; got {s.max_retries}")
    if not 0 < s.retry_initial_delay <= 60 or not 0 < s.retry_budget <= 3600:
        raise ConfigurationError(
            f"retry delays must be in (0, 60] s and the retry budget in (0, 3600] s; got "
            f"{s.retry_initial_delay} and {s.retry_budget}"
        )
    if not 64 * 1024 <= s.max_response_bytes <= 1024**3:
        raise ConfigurationError(
            f"--max-response-bytes must be between 65536 (64 KiB) and {1024**3} (1 GiB); got {s.max_response_bytes}"
        )
    if not 1 <= s.call_timeout <= 600:
        raise ConfigurationError(f"--call-timeout must be a number of seconds in [1, 600]; got {s.call_timeout}")
    if not 0 < s.http_read_timeout <= 300:
        raise ConfigurationError(
            f"--http-read-timeout must be a number of seconds in (0, 300]; got {s.http_read_timeout}"
        )
    if not 8 <= s.http_max_connections <= 100_000:
        raise ConfigurationError(f"--max-connections must be between 8 and 100000; got {s.http_max_connections}")
    if not 1 <= s.http_max_sessions <= 100_000:
        raise ConfigurationError(f"--max-sessions must be between 1 and 100000; got {s.http_max_sessions}")
    if not 1 <= s.http_session_idle <= 86400:
        raise ConfigurationError(
            f"--session-idle-timeout must be a number of seconds in [1, 86400]; got {s.http_session_idle}"
        )
    if not 0 < s.port < 65536:
        raise ConfigurationError(f"--port must be between 1 and 65535; got {s.port}")
    if s.transport == "http" and not is_loopback(s.host) and s.http_token is None:
        raise ConfigurationError(
            f"--host {s.host} is not a loopback address: set RUNLOOP_MCP_HTTP_TOKEN to a bearer token that "
            "HTTP clients must send, or bind 127.0.0.1"
        )
    if s.log_level not in LOG_LEVELS:
        raise ConfigurationError(f"log level {s.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    s.database  # noqa: B018 - checks RUNLOOP_MCP_DATABASE_URL (and that psycopg is there for PostgreSQL)
    keys = split_secret(s.secret.get_secret_value())
    if len(keys) == 1 and len(keys[0]) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"RUNLOOP_MCP_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
    for number, key in enumerate(keys, start=1):
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"RUNLOOP_MCP_SECRET: key {number} of {len(keys)} in the comma-separated list is "
                f"{'empty' if not key else 'too short'}; each key must be at least {MIN_SECRET_LENGTH} characters long"
            )
