"""Opaque, integrity-protected tokens: list cursors (and the signing that preview tokens share).

A token is ``<kind-prefix><base64url(payload JSON)>.<base64url(HMAC-SHA256)>``, signed with a key
derived from ``RUNLOOP_MCP_SECRET`` (random per process when unset) and the token's kind, so a
cursor can never pass for a preview token. Nothing is stored server-side: any replica sharing
the secret can continue any cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidCursor

MAX_TOKEN_LENGTH = 8192
_MAC_BYTES = 20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Seals and opens JSON payloads for one kind of token ("cursor", "preview")."""

    def __init__(self, secret: str, kind: str) -> None:
        self._key = hmac.new(secret.encode(), f"runloop-scenarios-mcp/{kind}/v1".encode(), hashlib.sha256).digest()
        self.prefix = f"{kind[:2]}1_"

    def seal(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return f"{self.prefix}{_b64(body)}.{_b64(mac)}"

    def open(self, token: str) -> dict[str, Any] | None:
        """The payload, or None when the token is malformed, truncated, altered or signed by another key."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.startswith(self.prefix):
            return None
        body_b64, dot, mac_b64 = token[len(self.prefix) :].partition(".")
        if not dot:
            return None
        try:
            body, mac = _unb64(body_b64), _unb64(mac_b64)
        except (binascii.Error, ValueError):
            return None
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class CursorState:
    """Where a listing resumes and which query it belongs to."""

    after: str
    """Id of the last scenario returned; the next page starts strictly after it (upstream ``starting_after``)."""
    query: dict[str, Any]
    """The filters and fields the cursor is bound to."""


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, "cursor")

    def encode(self, state: CursorState) -> str:
        return self._signer.seal({"a": state.after, "q": state.query})

    def decode(self, cursor: str) -> CursorState:
        payload = self._signer.open(cursor)
        if payload is None:
            raise InvalidCursor(
                "cursor is not valid: it was altered, truncated, or issued by another server (or this server "
                "restarted without RUNLOOP_MCP_SECRET). Pass next_cursor exactly as returned, or list again "
                "without cursor to start over."
            )
        after, query = payload.get("a"), payload.get("q")
        if not isinstance(after, str) or not isinstance(query, dict):
            raise InvalidCursor("cursor is not valid; list again without cursor to start over.")
        return CursorState(after=after, query=query)
