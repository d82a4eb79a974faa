"""List cursors: compact, integrity-protected, stateless (:class:`CursorCodec`), and :func:`canonical`.

A cursor names the scenario a listing resumes after and the query it belongs to, with an HMAC-SHA256
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
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

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
    """Id of the last scenario the listing went through (returned, or with ``text`` examined and skipped); the next
    page starts strictly after it (upstream ``starting_after``), so the scan resumes exactly where it stopped."""
    query: dict[str, Any]
    """The query the cursor is bound to: ``{"filters": {...}, "fields": [...] | None}``, plus ``"text"`` when given."""


_DEFAULT_QUERY: dict[str, Any] = {"filters": {}, "fields": None}
_DEFAULT_CANONICAL = b'{"fields":null,"filters":{}}'
"""``canonical(_DEFAULT_QUERY)``, the query of most cursors, spelled once."""
_CURSOR_VERSION = b"c3"
_SCENARIO_ID = re.compile(r"^scn_[0-9A-Za-z]{1,60}$")
_LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"
_MIXED = _LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAC_DIGITS = 18
"""The tag as 18 decimal digits (60 bits). A cursor grants nothing its holder could not ask for with arguments, so
the tag only has to catch altered, truncated or mixed-up cursors (one guess in 2^60 passes); digits cost exactly one
token per three in both encodings, so the tag is 6 tokens where 96 bits of base64 took about 11."""


def canonical(value: Any) -> str:
    """One spelling per JSON value (keys sorted, no spaces): what signatures and fingerprints are taken over."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _escape(value: str) -> str:
    return quote_plus(value, safe="*").replace(".", "%2E").replace("~", "%7E")


def _pack(query: dict[str, Any]) -> str:
    """``text~fields~name~benchmark_id~validation_type~search``, percent-encoded, trailing blanks dropped.

    Readable text costs a third of the tokens of base64 (``EVALUATION`` is 2 tokens, its base64 about 8).
    """
    fields = query["fields"]
    parts = [_escape(query["text"]) if query.get("text") is not None else ""]
    parts.append(",".join(_escape(f) for f in fields) if fields is not None else "")
    parts += [_escape(query["filters"][key]) if key in query["filters"] else "" for key in LIST_FILTERS]
    return "~".join(parts).rstrip("~")


def _unpack(packed: str) -> dict[str, Any] | None:
    parts = packed.split("~")
    if len(parts) > 2 + len(LIST_FILTERS):
        return None
    text = unquote_plus(parts[0], errors="strict") if parts[0] else None
    fields = [unquote_plus(f, errors="strict") for f in parts[1].split(",")] if len(parts) > 1 and parts[1] else None
    filters = {key: unquote_plus(v, errors="strict") for key, v in zip(LIST_FILTERS, parts[2:], strict=False) if v}
    return {"filters": filters, "fields": fields} | ({"text": text} if text is not None else {})


def _id_digits(scenario_id: str) -> str | None:
    """A ``scn_`` id as decimal digits (a third fewer tokens than the id itself), else None.

    The body is read as a number in base 36 (``[0-9a-z]``) or, when it has capitals, base 62, behind a
    leading 1 that keeps its leading zeros; the number is doubled, plus 1 for base 62.
    """
    if not _SCENARIO_ID.match(scenario_id):
        return None
    body = scenario_id[4:]
    mixed = body != body.lower()
    if not mixed:
        return str(int("1" + body, 36) * 2)  # int() reads base 36 as _LOWER does
    number = 1
    for char in body:
        number = number * len(_MIXED) + _MIXED.index(char)
    return str(number * 2 + 1)


def _id_from_digits(digits: str) -> str | None:
    if not digits.isdigit() or digits.startswith("0") or len(digits) > 120:
        return None
    number, mixed = divmod(int(digits), 2)
    alphabet = _MIXED if mixed else _LOWER
    body = ""
    while number >= len(alphabet):
        number, rest = divmod(number, len(alphabet))
        body = alphabet[rest] + body
    if number != 1 or not body or (mixed and body == body.lower()):  # the leading 1; one spelling per id
        return None
    return "scn_" + body


class CursorCodec:
    """Compact list cursors: ``<id digits><tag>`` for a default listing, ``.<query>`` appended otherwise.

    A cursor is paid for in tokens on every page, so it is kept short (about 20 tokens for a default listing):

    * the scenario id: a ``scn_`` id as the decimal digits of its body read in base 36 (62 with capitals),
      followed directly by the tag;
      any other id as ``base64url(id)~<tag>``;
    * the tag: HMAC-SHA256 over the id and the canonical query, as :data:`_MAC_DIGITS` decimal digits;
    * the query: nothing for the default query (no filters, summary fields, no text), else ``.`` and the
      percent-encoded ``text~fields~name~benchmark_id~validation_type~search``.

    Opaque to agents (they pass it back as is), but not secret: it names a scenario id the listing went through.
    """

    def __init__(self, secrets: str | Sequence[str]) -> None:
        """``secrets``: one secret, or several in order (the first signs, all verify)."""
        self._keys = keys.derive(secrets, keys.CURSOR)

    def _mac(self, after: str, query: dict[str, Any], key: bytes | None = None) -> bytes:
        spelled = _DEFAULT_CANONICAL if query == _DEFAULT_QUERY else canonical(query).encode()
        body = _CURSOR_VERSION + b"\0" + after.encode() + b"\0" + spelled
        digest = hmac.digest(key or self._keys[0], body, "sha256")
        return str(int.from_bytes(digest[:16]) % 10**_MAC_DIGITS).zfill(_MAC_DIGITS).encode()

    def encode(self, state: CursorState) -> str:
        query = {"filters": dict(state.query.get("filters") or {}), "fields": state.query.get("fields")}
        if state.query.get("text") is not None:
            query["text"] = state.query["text"]
        mac = self._mac(state.after, query).decode()
        digits = _id_digits(state.after)
        head = digits + mac if digits is not None else f"{_b64(state.after.encode())}~{mac}"
        return head if query == _DEFAULT_QUERY else f"{head}.{_pack(query)}"

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
        if not isinstance(cursor, str) or len(cursor) > MAX_TOKEN_LENGTH or not cursor.isascii():
            return None
        head, dot, packed = cursor.partition(".")
        try:
            query = _unpack(packed) if dot else dict(_DEFAULT_QUERY)
            if "~" in head:
                id_part, _, mac_text = head.partition("~")
                after: str | None = _unb64(id_part).decode()
            else:
                after, mac_text = _id_from_digits(head[:-_MAC_DIGITS]), head[-_MAC_DIGITS:]
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            return None
        if not after or query is None or (dot and query == _DEFAULT_QUERY):  # one spelling per cursor
            return None
        if len(mac_text) != _MAC_DIGITS or not mac_text.isdigit():
            return None
        mac = mac_text.encode()
        if not any(hmac.compare_digest(mac, self._mac(after, query, key)) for key in self._keys):
            return None
        return CursorState(after=after, query=query)
