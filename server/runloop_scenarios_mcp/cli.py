"""Command line: ``runloop-scenarios-mcp [options]`` serves MCP; subcommands run the emulator, the demo, schemas.

Every flag and environment value is checked before anything starts; a bad one ends the process
with a one-line message on stderr and exit code 2 (fail closed). stdout is reserved for the MCP
protocol: nothing here writes to it while serving.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from pydantic import SecretStr

from runloop_scenarios_mcp import __version__
from runloop_scenarios_mcp.config import (
    DEFAULT_BASE_URL,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HTTP_MAX_CONNECTIONS,
    DEFAULT_HTTP_MAX_SESSIONS,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTP_READ_TIMEOUT,
    DEFAULT_HTTP_SESSION_IDLE,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MAX_TOKENS_CAP,
    DEFAULT_TIMEOUT,
    LOG_LEVELS,
    Settings,
    default_database_url,
    default_journal_path,
    parse_database_url,
)
from runloop_scenarios_mcp.errors import ConfigurationError
from runloop_scenarios_mcp.logs import configure_logging

PROG = "runloop-scenarios-mcp"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={env[name]!r} is not a boolean; use 1 or 0")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "MCP server to browse and safely edit Runloop scenarios. Serves MCP over stdio by default; an MCP host "
            "(Claude Desktop, Claude Code, VS Code, Cursor) launches it. Needs RUNLOOP_API_KEY, or --emulator to "
            "try it on built-in sample data."
        ),
        epilog=(
            "environment: RUNLOOP_API_KEY, RUNLOOP_BASE_URL, RUNLOOP_MCP_READ_ONLY, RUNLOOP_MCP_SECRET, "
            "RUNLOOP_MCP_HTTP_TOKEN, RUNLOOP_MCP_DATABASE_URL, RUNLOOP_MCP_JOURNAL, RUNLOOP_MCP_LOG_LEVEL. "
            "Subcommands: emulator (serve the sample Runloop API on loopback), demo (a scripted MCP session), "
            "schemas (write or check schemas/), journal (the undo journal and audit trail: list, show, undo, export)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--emulator", action="store_true", help="serve from the embedded Runloop emulator (no key)")
    parser.add_argument("--read-only", action="store_true", help="list and allow only read-only tools")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default: stdio")
    parser.add_argument("--host", default=None, help="--transport http bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"--transport http port (default {DEFAULT_HTTP_PORT})")
    parser.add_argument(
        "--default-max-tokens",
        type=int,
        default=None,
        help=f"page budget when a call gives none (default {DEFAULT_MAX_TOKENS}, or the cap if lower)",
    )
    parser.add_argument(
        "--max-tokens-cap",
        type=int,
        default=DEFAULT_MAX_TOKENS_CAP,
        help=f"the largest budget a call may ask (default {DEFAULT_MAX_TOKENS_CAP})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=(
            f"upstream request timeout in seconds (default {DEFAULT_TIMEOUT:g}; {DEFAULT_CONNECT_TIMEOUT:g} s to "
            "connect)"
        ),
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help=f"upstream retries of a read (default {DEFAULT_MAX_RETRIES})",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--call-timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT,
        help=f"seconds one tool call may spend on the Runloop API, retries included (default {DEFAULT_CALL_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-response-bytes",
        type=int,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        help=f"largest upstream answer read, in bytes (default {DEFAULT_MAX_RESPONSE_BYTES}, 32 MiB)",
    )
    limits.add_argument(
        "--http-read-timeout",
        type=float,
        default=DEFAULT_HTTP_READ_TIMEOUT,
        help=f"seconds an HTTP client has for a request's headers, and for its body (default "
        f"{DEFAULT_HTTP_READ_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_HTTP_MAX_CONNECTIONS,
        help=f"open HTTP connections at most (default {DEFAULT_HTTP_MAX_CONNECTIONS})",
    )
    limits.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_HTTP_MAX_SESSIONS,
        help=f"open 2025-11-25 HTTP sessions at most (default {DEFAULT_HTTP_MAX_SESSIONS})",
    )
    limits.add_argument(
        "--session-idle-timeout",
        type=float,
        default=DEFAULT_HTTP_SESSION_IDLE,
        help=f"seconds an idle HTTP session is kept (default {DEFAULT_HTTP_SESSION_IDLE:g})",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="the JSON Lines journal of earlier versions, imported once into the database (default "
        "${XDG_STATE_HOME:-~/.local/state}/runloop-scenarios-mcp/journal.jsonl; emulator-journal.jsonl there with "
        "--emulator); without --database-url the database is a SQLite file beside it (.sqlite3)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="the journal database, shared by every process and replica: sqlite:///PATH or postgresql://... "
        "(default: a SQLite file beside --journal; or RUNLOOP_MCP_DATABASE_URL)",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.upper,
        default=None,
        help=f"level of the log lines on stderr (default {DEFAULT_LOG_LEVEL}, or RUNLOOP_MCP_LOG_LEVEL)",
    )

    commands = parser.add_subparsers(dest="command", metavar="{emulator,demo,schemas,journal}")
    emulator = commands.add_parser("emulator", help="serve the sample Runloop scenarios API on loopback HTTP")
    emulator.add_argument("--host", dest="emulator_host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    emulator.add_argument("--port", dest="emulator_port", type=int, default=8765, help="port (default 8765)")
    emulator.add_argument("--seed", type=int, default=0, help="seed of the generated data set (default 0)")
    emulator.add_argument("--api-key", default=None, help="require exactly this bearer token (default: any)")
    commands.add_parser("demo", help="run a scripted MCP session against the emulator and show what an agent sees")
    schemas = commands.add_parser("schemas", help="write or check the JSON Schemas in schemas/")
    mode = schemas.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    schemas.add_argument("--dir", type=Path, default=Path("schemas"))
    journal = commands.add_parser("journal", help="the undo journal and audit trail: list, show, undo, export")
    journal_actions = journal.add_subparsers(dest="journal_action", metavar="{list,show,undo,export}", required=True)
    journal_list = journal_actions.add_parser(
        "list",
        help="one line per write: entry, time, scenario, outcome, fields, client, transport, HTTP token id, "
        "preview token id",
    )
    show = journal_actions.add_parser("show", help="one entry in full, as JSON (before and after versions included)")
    undo = journal_actions.add_parser("undo", help="print update_scenario arguments that restore an entry's version")
    export = journal_actions.add_parser("export", help="every entry in full as JSON Lines (stdout, or --output)")
    export.add_argument("--output", type=Path, default=None, help="write to this file instead of stdout")
    for action in (show, undo):
        action.add_argument("entry", help="journal entry id, as the apply result names it (j_...)")
    for action in (journal_list, export):
        action.add_argument("--scenario", dest="scenario_id", default=None, help="only this scenario's entries")
        action.add_argument(
            "--since", default=None, help="from this time: ISO 8601 (UTC unless given), or 30m, 12h, 7d"
        )
        action.add_argument("--until", default=None, help="before this time (same forms as --since)")
        action.add_argument("--limit", type=int, default=None, help="only the newest N entries (still oldest first)")
    for action in (journal_list, show, undo, export):
        action.add_argument("--journal", dest="journal_file", type=Path, default=None, help="as --journal above")
        action.add_argument("--database-url", dest="journal_database_url", default=None, help="as --database-url above")
    return parser


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from parsed flags and the environment (flags win). Raises ConfigurationError."""
    if args.transport != "http" and (args.host is not None or args.port is not None):
        raise ConfigurationError("--port/--host apply to --transport http; add --transport http or drop them")
    # A blank key is what hosts pass for an unset ${env:...} or a dismissed prompt: treat it as no key, so the
    # server starts and every tool says how to set one (instead of the host showing only "connection closed").
    api_key = env.get("RUNLOOP_API_KEY") or None
    if api_key is not None and not api_key.strip():
        api_key = None
    http_token = env.get("RUNLOOP_MCP_HTTP_TOKEN")
    secret = env.get("RUNLOOP_MCP_SECRET")
    journal = args.journal or (Path(env["RUNLOOP_MCP_JOURNAL"]) if env.get("RUNLOOP_MCP_JOURNAL") else None)
    database_url = args.database_url or env.get("RUNLOOP_MCP_DATABASE_URL") or None
    extra: dict[str, object] = {}
    if secret is not None:
        extra["secret"] = SecretStr(secret)
    return Settings(
        api_key=SecretStr(api_key) if api_key is not None else None,
        base_url=env.get("RUNLOOP_BASE_URL") or DEFAULT_BASE_URL,
        emulator=args.emulator,
        read_only=args.read_only or _env_flag(env, "RUNLOOP_MCP_READ_ONLY"),
        transport=args.transport,
        host=args.host if args.host is not None else "127.0.0.1",
        port=args.port if args.port is not None else DEFAULT_HTTP_PORT,
        http_token=SecretStr(http_token) if http_token else None,
        default_max_tokens=(
            args.default_max_tokens
            if args.default_max_tokens is not None
            else min(DEFAULT_MAX_TOKENS, args.max_tokens_cap)
        ),
        max_tokens_cap=args.max_tokens_cap,
        timeout=args.timeout,
        max_retries=args.max_retries,
        call_timeout=args.call_timeout,
        max_response_bytes=args.max_response_bytes,
        http_read_timeout=args.http_read_timeout,
        http_max_connections=args.max_connections,
        http_max_sessions=args.max_sessions,
        http_session_idle=args.session_idle_timeout,
        log_level=args.log_level or (env.get("RUNLOOP_MCP_LOG_LEVEL") or DEFAULT_LOG_LEVEL).upper(),  # type: ignore[arg-type]
        journal_path=journal or default_journal_path(env, emulator=args.emulator),
        database_url=SecretStr(database_url) if database_url is not None else None,
        **extra,  # type: ignore[arg-type]
    )


def _skip_httpx_cli() -> None:
    """Keep httpx from importing its own command line (click, rich, pygments: a tenth of our start-up).

    ``httpx/__init__`` imports ``httpx._main`` for its ``httpx`` console script and falls back to a stub when that
    import fails; this process never runs that script, so the import is made to fail (a None entry in
    ``sys.modules``). Only before httpx is imported, and only in this console script's process.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    _skip_httpx_cli()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "schemas":
        from runloop_scenarios_mcp.schema_export import check_or_write

        sys.exit(check_or_write(args.dir, write=args.write))
    if args.command == "journal":
        sys.exit(_journal(args, parser))
    if args.command == "demo":
        from runloop_scenarios_mcp.demo import run_demo

        sys.exit(run_demo())
    try:
        settings = settings_from(args, os.environ)
    except ConfigurationError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    configure_logging(settings.log_level, secrets=settings.secret_values)
    try:
        if args.command == "emulator":
            _serve_emulator(args)
            return
        from runloop_scenarios_mcp.app import serve_mcp

        serve_mcp(settings)
    except ConfigurationError as exc:  # the HTTP address cannot be listened on; nothing was served
        parser.exit(2, f"{PROG}: error: {exc}\n")
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place (or where there are none)
        sys.exit(0)


def _journal(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``journal list|show|undo|export`` on the database the servers use (the same flags and environment)."""
    from runloop_scenarios_mcp.services.journal.cli import JournalCommand, journal_command

    env_path = os.environ.get("RUNLOOP_MCP_JOURNAL")
    default = default_journal_path(os.environ, emulator=args.emulator)
    path = args.journal_file or args.journal or (Path(env_path) if env_path else default)
    url = args.journal_database_url or args.database_url or os.environ.get("RUNLOOP_MCP_DATABASE_URL")
    try:
        database = parse_database_url(url) if url else parse_database_url(default_database_url(path))
    except ConfigurationError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    command = JournalCommand(
        action=args.journal_action,
        entry=getattr(args, "entry", None),
        scenario_id=getattr(args, "scenario_id", None),
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
        limit=getattr(args, "limit", None),
        output=getattr(args, "output", None),
    )
    return journal_command(command, database, path, sys.stdout, sys.stderr)


def _serve_emulator(args: argparse.Namespace) -> None:
    from runloop_scenarios_mcp.emulator.loopback import serve

    try:
        serve(host=args.emulator_host, port=args.emulator_port, seed=args.seed, api_key=args.api_key)
    except OSError as exc:  # the emulator binds as it starts: a taken port, an address not of this machine
        from runloop_scenarios_mcp.transport.listen import bind_error_message

        raise ConfigurationError(bind_error_message(args.emulator_host, args.emulator_port, exc)) from None


if __name__ == "__main__":  # pragma: no cover
    main()
