"""Settings: one frozen object built from flags and environment, fail-closed, secrets opaque.

Precedence: command-line flag, then environment variable, then default. Every value is checked
here, once, so nothing deeper in the server ever sees a half-valid configuration.
"""

from __future__ import annotations

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
DEFAULT_HTTP_PORT = 8000
DEFAULT_CONFIRM_TIMEOUT = 300.0
"""Seconds to wait for a person to answer the confirmation (elicitation) before refusing to write."""
DEFAULT_PREVIEW_TTL = 600
"""Seconds a preview token stays valid."""
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
    log_level: LogLevel = DEFAULT_LOG_LEVEL
    journal_path: Path = field(default_factory=lambda: default_journal_path(os.environ))
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
    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in any output (results, errors, logs): longest first, every key alone."""
        values = [self.api_key, self.http_token, self.secret, *self.secrets]
        found = {v.get_secret_value() for v in values if v is not None and v.get_secret_value()}
        return tuple(sorted(found, key=len, reverse=True))


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
    if not 0 < s.port < 65536:
        raise ConfigurationError(f"--port must be between 1 and 65535; got {s.port}")
    if s.transport == "http" and not is_loopback(s.host) and s.http_token is None:
        raise ConfigurationError(
            f"--host {s.host} is not a loopback address: set RUNLOOP_MCP_HTTP_TOKEN to a bearer token that "
            "HTTP clients must send, or bind 127.0.0.1"
        )
    if s.log_level not in LOG_LEVELS:
        raise ConfigurationError(f"log level {s.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    keys = split_secret(s.secret.get_secret_value())
    if len(keys) == 1 and len(keys[0]) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"RUNLOOP_MCP_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
    for number, key in enumerate(keys, start=1):
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"RUNLOOP_MCP_SECRET: key {number} of {len(keys)} in the comma-separated list is "
                f"{'empty' if not key else 'too short'}; each key must be at least {MIN_SECRET_LENGTH} characters long"
            )
