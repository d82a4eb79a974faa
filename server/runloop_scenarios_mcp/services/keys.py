"""Sealing keys: one per purpose, derived from each ``RUNLOOP_MCP_SECRET`` key; the first signs, all verify.

``RUNLOOP_MCP_SECRET`` may be a comma-separated list so keys can rotate without breaking calls in
flight: deploy ``new,old`` everywhere, then ``new`` once what ``old`` sealed has expired. Each kind
of sealed value (list cursors, preview tokens, the SDK's ``requestState``) gets keys of its own,
``HMAC-SHA256(secret, purpose)``, so no value of one kind can pass for another, and any process
holding the same secrets opens what another sealed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

CURSOR = b"runloop-scenarios-mcp/cursor/v2"
PREVIEW = b"runloop-scenarios-mcp/preview/v2"
REQUEST_STATE = b"runloop-scenarios-mcp/request-state/v1"


def derive(secrets: str | Sequence[str], purpose: bytes) -> tuple[bytes, ...]:
    """32-byte keys for ``purpose``, one per secret in order (duplicates dropped): ``[0]`` signs, all verify.

    A single string is one secret (commas are split where the setting is read, in ``config``).
    """
    given = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not given:
        raise ValueError("at least one secret is needed to derive sealing keys")
    keys = (hmac.new(secret.encode(), purpose, hashlib.sha256).digest() for secret in given)
    return tuple(dict.fromkeys(keys))
