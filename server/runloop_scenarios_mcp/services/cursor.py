"""List cursors: compact, integrity-protected, stateless (:class:`CursorCodec`), and :func:`canonical`.

A cursor names the last scenario a page returned and the query it belongs to, with an HMAC-SHA256
tag under a key derived from ``RUNLOOP_MCP_SECRET`` (random per process when unset) and a label of
its own (:mod:`services.keys`), so no other token of this server can pass for a cursor. Nothing is
stored server-side: any replica sharing the secret can continue any cursor. With several secrets
(rotation), the first signs and a cursor signed under any of them is accepted. (Preview tokens have
their own format and key: ``services/update/tokens.py``.) :func:`canonical` is the one JSON spelling
that cursor tags and scenario fingerprints are taken over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from runloop_scenarios_mcp.errors import InvalidCursor
from runloop_scenarios_mcp.services import keys
from runloop_scenarios_mcp.upstream.models import LIST_FILTERS

MAX_TOKEN_LENGTH = 8192


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CursorState:
    """Where a listing resumes and which query it belongs to."""

    after: str
    """Id of the last scenario returned; the next page starts strictly after it (upstream ``starting_after``)."""
    query: dict[str, Any]
    """The filters and fields the cursor is bound to: ``{"filters": {...}, "fields": [...] | None}``."""


_PLAIN_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_DEFAULT_QUERY: dict[str, Any] = {"filters": {}, "fields": None}
_CURSOR_PREFIX = "c2"
_CURSOR_MAC_BYTES = 12
"""96 bits (RFC 2104 allows truncation to half the hash and no less than 80 bits): unforgeable for an online
guesser, and 16 characters instead of 27, since every page pays for its cursor in tokens."""


def canonical(value: Any) -> str:
    """One spelling per JSON value (keys sorted, no spaces): what signatures and fingerprints are taken over."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _escape(value: str) -> str:
    return quote(value, safe="*").replace(".", "%2E").replace("~", "%7E")


def _pack(query: dict[str, Any]) -> str:
    """``fields~name~benchmark_id~validation_type~search``, percent-encoded, trailing blanks dropped.

    Readable text costs a third of the tokens of base64 (``EVALUATION`` is 2 tokens, its base64 about 8).
    """
    fields = query["fields"]
    parts = [",".join(_escape(f) for f in fields) if fields is not None else ""]
    parts += [_escape(query["filters"][key]) if key in query["filters"] else "" for key in LIST_FILTERS]
    return "~".join(parts).rstrip("~")


def _unpack(packed: str) -> dict[str, Any] | None:
    parts = packed.split("~")
    if len(parts) > 1 + len(LIST_FILTERS):
        return None
    fields = [unquote(f, errors="strict") for f in parts[0].split(",")] if parts[0] else None
    filters = {key: unquote(v, errors="strict") for key, v in zip(LIST_FILTERS, parts[1:], strict=False) if v}
    return {"filters": filters, "fields": fields}


class CursorCodec:
    """Compact list cursors: ``c2.<after>.<query>.<mac>``.

    A cursor is paid for in tokens on every page, so it is kept short (about 30 tokens):

    * ``after``: the scenario id as it is when it is a plain ``[A-Za-z0-9_-]`` id, else ``~`` + base64url;
    * ``query``: empty for the default query (no filters, summary fields), else the percent-encoded
      ``fields~name~benchmark_id~validation_type~search``;
    * ``mac``: HMAC-SHA256 over the id and the canonical query, cut to 96 bits.

    Opaque to agents (they pass it back as is), but not secret: it names a scenario id the page showed.
    """

    def __init__(self, secrets: str | Sequence[str]) -> None:
        """``secrets``: one secret, or several in order (the first signs, all verify)."""
        self._keys = keys.derive(secrets, keys.CURSOR)

    def _mac(self, after: str, query: dict[str, Any], key: bytes | None = None) -> bytes:
        body = _CURSOR_PREFIX.encode() + b"\0" + after.encode() + b"\0" + canonical(query).encode()
        return hmac.new(key or self._keys[0], body, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]

    def encode(self, state: CursorState) -> str:
        query = {"filters": dict(state.query.get("filters") or {}), "fields": state.query.get("fields")}
        after = state.after if _PLAIN_ID.match(state.after) else "~" + _b64(state.after.encode())
        packed = "" if query == _DEFAULT_QUERY else _pack(query)
        return f"{_CURSOR_PREFIX}.{after}.{packed}.{_b64(self._mac(state.after, query))}"

    def decode(self, cursor: str) -> CursorState:
        state = self._open(cursor)
        if state is None:
            raise InvalidCursor(
                "cursor is not valid: it was altered, truncated, or issued by another server (or this server "
                "restarted without RUNLOOP_MCP_SECRET). Pass next_cursor exactly as returned, or list again "
                "without cursor to start over."
            )
        return state

    def _open(self, cursor: str) -> CursorState | None:
        if not isinstance(cursor, str) or len(cursor) > MAX_TOKEN_LENGTH:
            return None
        parts = cursor.split(".")
        if len(parts) != 4 or parts[0] != _CURSOR_PREFIX:
            return None
        _, after_part, query_part, mac_part = parts
        try:
            after = _unb64(after_part[1:]).decode() if after_part.startswith("~") else after_part
            query = _unpack(query_part) if query_part else dict(_DEFAULT_QUERY)
            mac = _unb64(mac_part)
        except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return None
        if not after or query is None:
            return None
        if not any(hmac.compare_digest(mac, self._mac(after, query, key)) for key in self._keys):
            return None
        return CursorState(after=after, query=query)
