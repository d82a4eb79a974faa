"""A real PostgreSQL for the journal tests: a fresh database per test, with a random name, dropped after.

The server is ``RUNLOOP_MCP_TEST_DATABASE_URL`` (read when the tests are collected, before fixtures clear
``RUNLOOP_*``), else ``postgresql://127.0.0.1:5432/test``: any database there the tests can connect to and
``CREATE DATABASE`` from. Without a reachable server the PostgreSQL tests are skipped, and the run's header
says so; with ``CI=true`` they fail instead (CI always has one).
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit

import pytest

from runloop_scenarios_mcp.config import redact_url

DEFAULT_ADMIN_URL = "postgresql://127.0.0.1:5432/test"
ADMIN_URL = os.environ.get("RUNLOOP_MCP_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SESSION = secrets.token_hex(4)
_numbers = itertools.count()


@cache
def unreachable_reason() -> str | None:
    """None when PostgreSQL answers at ADMIN_URL, else why not (checked once per run)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {redact_url(ADMIN_URL)} ({type(exc).__name__})"
    return None


def report_header() -> str:
    reason = unreachable_reason()
    if reason is None:
        return f"journal on PostgreSQL: {redact_url(ADMIN_URL)} (a fresh database per test, dropped after)"
    action = "FAILED (CI=true)" if IN_CI else "SKIPPED; set RUNLOOP_MCP_TEST_DATABASE_URL to run them"
    return f"journal on PostgreSQL: {reason}: those tests are {action}"


def require_postgres() -> None:
    reason = unreachable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason}; CI must run the PostgreSQL journal tests", pytrace=False)
    pytest.skip(f"{reason}; set RUNLOOP_MCP_TEST_DATABASE_URL to run the PostgreSQL journal tests")


def database_url(name: str) -> str:
    return urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for one test; its URL. Dropped afterwards (its connections ended first)."""
    import psycopg

    require_postgres()
    name = f"rsm_test_{SESSION}_{next(_numbers)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # our own random name
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
