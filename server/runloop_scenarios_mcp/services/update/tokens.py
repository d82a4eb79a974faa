"""Preview tokens: short, sealed, stateless proof that a dry run showed exactly this change.

A token is ``pv_`` and 27 bytes in base64url (39 characters, at most 33 tokens by o200k_base or
cl100k_base), so an agent copies it reliably. It carries no readable payload, only an expiry, a nonce and keyed MACs:

=========  =====  ==========================================================================
part       bytes  what it proves (HMAC-SHA256 under a key derived from RUNLOOP_MCP_SECRET)
=========  =====  ==========================================================================
expires    4      when the token stops being accepted (seconds since the epoch)
nonce      6      which preview this is: single use is recorded against it in the journal
scenario   2      the scenario id (else: issued for another scenario)
changes    2      the exact changes (else: changes differ)
after      2      the scenario as the preview expected it after the write (else: stale, not "used")
seal       8      all of it, with the fingerprint of the scenario the preview read
head       3      every byte above was issued here, unaltered (else: invalid)
=========  =====  ==========================================================================

Only the 64-bit seal allows a write: it binds the scenario id, the canonical changes, the
scenario version (its fingerprint) and the expiry. The short tags exist only to tell an agent
which of the distinct refusals applies; a forged tag can at most change the wording of a refusal.

Key rotation (``RUNLOOP_MCP_SECRET="new,old"``) adds nothing to the token: it is signed under the
first key, and opening it tries each key in order until the head matches, then checks every other
part under that key. A head that matches under a wrong key by chance (2^-24 per extra key) can
only change which refusal is given; the seal still has to match under that key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from runloop_scenarios_mcp.config import DEFAULT_PREVIEW_TTL
from runloop_scenarios_mcp.errors import PreviewRefused, RefusalReason
from runloop_scenarios_mcp.services import keys

PREFIX = "pv_"
_LAYOUT = struct.Struct(">I6s2s2s2s8s3s")
_SIGNED = _LAYOUT.size - 3
_TEXT_LENGTH = len(PREFIX) + (_LAYOUT.size * 4 + 2) // 3


@dataclass(frozen=True)
class TokenClaims:
    """What an opened token says before the scenario is read again: enough to refuse early."""

    nonce: str
    expires: int
    after_tag: bytes
    seal: bytes
    key: int = 0
    """Which of the keys (in ``RUNLOOP_MCP_SECRET`` order) the token was issued under."""


class PreviewTokens:
    """Issues and checks preview tokens (stateless: any process sharing the secret can check them).

    ``secrets``: one secret, or several in order (the first signs, all verify).
    """

    def __init__(self, secrets: str | Sequence[str], ttl_seconds: int = DEFAULT_PREVIEW_TTL) -> None:
        self._keys = keys.derive(secrets, keys.PREVIEW)
        self.ttl = ttl_seconds

    def _mac(self, label: bytes, *parts: bytes | str, size: int, key: int = 0) -> bytes:
        message = label + b"".join(
            struct.pack(">I", len(data)) + data for data in (p.encode() if isinstance(p, str) else p for p in parts)
        )
        return hmac.new(self._keys[key], message, hashlib.sha256).digest()[:size]

    def _issuer(self, raw: bytes | None, scenario_id: str) -> int | None:
        """The key whose head tag matches (preferring one whose scenario tag matches too), or None."""
        if raw is None:
            return None
        signed, head, scenario_tag = raw[:_SIGNED], raw[:10], raw[10:12]
        issuers = [
            k
            for k in range(len(self._keys))
            if hmac.compare_digest(raw[_SIGNED:], self._mac(b"h", signed, size=3, key=k))
        ]
        for key in issuers:
            if hmac.compare_digest(scenario_tag, self._mac(b"s", head, scenario_id, size=2, key=key)):
                return key
        return issuers[0] if issuers else None

    def issue(
        self, scenario_id: str, changes_digest: str, before: str, after: str, now: float | None = None
    ) -> tuple[str, str]:
        """A token for applying the changes with ``changes_digest`` to version ``before`` of ``scenario_id``.

        Returns the token and its expiry as ISO 8601 UTC.
        """
        expires = int((time.time() if now is None else now) + self.ttl)
        nonce = secrets.token_bytes(6)
        head = struct.pack(">I", expires) + nonce
        signed = (
            head
            + self._mac(b"s", head, scenario_id, size=2)
            + self._mac(b"c", head, changes_digest, size=2)
            + self._mac(b"a", head, after, size=2)
            + self._mac(b"v", head, scenario_id, changes_digest, before, size=8)
        )
        raw = signed + self._mac(b"h", signed, size=3)
        token = PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return token, datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def open(self, token: str | None, scenario_id: str, changes_digest: str, now: float | None = None) -> TokenClaims:
        """Everything that can be checked before reading the scenario, in the order an agent can fix it."""
        if not token:
            raise _refused(
                "missing",
                "dry_run=false needs preview_token. Call update_scenario with dry_run=true and these changes first, "
                "review the diff, then call again with dry_run=false and the preview_token it returned.",
            )
        raw = _decode(token)
        key = self._issuer(raw, scenario_id)
        if raw is None or key is None:
            raise _refused(
                "invalid",
                "preview_token is not valid: it was altered, truncated, or issued by another server (or this server "
                "restarted without RUNLOOP_MCP_SECRET). Run the dry run again to get a new token.",
            )
        expires, nonce, scenario_tag, changes_tag, after_tag, seal, _check = _LAYOUT.unpack(raw)
        head = raw[:10]
        if not hmac.compare_digest(scenario_tag, self._mac(b"s", head, scenario_id, size=2, key=key)):
            raise _refused(
                "invalid",
                "preview_token was issued for another scenario. Run the dry run for this scenario_id to get its token.",
            )
        if (time.time() if now is None else now) > expires:
            raise _refused(
                "expired",
                f"preview_token has expired (tokens last {self.ttl // 60} minutes). Run the dry run again, check the "
                "diff, and apply with the new token.",
            )
        if not hmac.compare_digest(changes_tag, self._mac(b"c", head, changes_digest, size=2, key=key)):
            raise _refused(
                "changes_differ",
                "changes differ from the ones this preview_token was issued for. Apply exactly the previewed changes "
                "(or the same restore), or run a dry run of the new changes first.",
            )
        return TokenClaims(nonce=nonce.hex(), expires=expires, after_tag=after_tag, seal=seal, key=key)

    def matches_version(self, claims: TokenClaims, scenario_id: str, changes_digest: str, before: str) -> bool:
        """True when the token was issued for exactly this change to the scenario version ``before``."""
        head = struct.pack(">I", claims.expires) + bytes.fromhex(claims.nonce)
        expected = self._mac(b"v", head, scenario_id, changes_digest, before, size=8, key=claims.key)
        return hmac.compare_digest(claims.seal, expected)

    def matches_after(self, claims: TokenClaims, version: str) -> bool:
        """True when ``version`` is the scenario the preview expected after its write (already applied)."""
        head = struct.pack(">I", claims.expires) + bytes.fromhex(claims.nonce)
        return hmac.compare_digest(claims.after_tag, self._mac(b"a", head, version, size=2, key=claims.key))


def _refused(reason: RefusalReason, message: str) -> PreviewRefused:
    """A refusal before anything is sent, saying so as every other such refusal does."""
    return PreviewRefused(reason, message + " Nothing was written.")


def _decode(token: str) -> bytes | None:
    if not isinstance(token, str) or len(token) != _TEXT_LENGTH or not token.startswith(PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(token[len(PREFIX) :] + "=" * (-(len(token) - len(PREFIX)) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _LAYOUT.size else None
