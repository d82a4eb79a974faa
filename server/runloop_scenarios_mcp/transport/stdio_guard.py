"""Answer every line a stdio client sends: a line that is not a valid JSON-RPC message gets an error reply.

The SDK's stdio transport hands such lines to the server as exceptions, which it only logs, so a
client waiting on that request id would wait forever. This filter sits between the transport and
the server: messages pass through unchanged; each exception becomes a JSON-RPC error response,
``-32700`` (not JSON) or ``-32600`` (not a valid request), carrying the request's id when one can
be read from it, else ``null`` as JSON-RPC 2.0 prescribes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError
from pydantic import ValidationError

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def request_id_of(exc: Exception) -> str | int | None:
    """The id of the rejected message, when the validation error shows a usable one."""
    if not isinstance(exc, ValidationError):
        return None
    for error in exc.errors():
        candidate: Any = error.get("input")
        if isinstance(candidate, dict) and "id" in candidate:
            value = candidate["id"]
            if isinstance(value, str | int) and not isinstance(value, bool):
                return value
    return None


def error_reply(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error response for a line the transport could not turn into a message."""
    not_json = isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
    if not_json:
        code, message = PARSE_ERROR, "Parse error: the line is not valid JSON; send one JSON-RPC 2.0 object per line"
    else:
        code, message = (
            INVALID_REQUEST,
            'Invalid request: send a JSON-RPC 2.0 object with "jsonrpc": "2.0", a string or integer "id", '
            'a string "method" and object "params" (batches are not supported)',
        )
    return JSONRPCError.model_validate(
        {"jsonrpc": "2.0", "id": request_id_of(exc), "error": {"code": code, "message": message}}
    )


@asynccontextmanager
async def answer_bad_lines(
    read_stream: ObjectReceiveStream[SessionMessage | Exception],
    write_stream: ObjectSendStream[SessionMessage],
) -> AsyncIterator[ObjectReceiveStream[SessionMessage | Exception]]:
    """A read stream with the transport's messages; its exceptions are answered on ``write_stream`` instead."""
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def forward() -> None:
        async with send:
            async for item in read_stream:
                if isinstance(item, Exception):
                    logger.warning("rejected_line error=%s", type(item).__name__)
                    await write_stream.send(SessionMessage(error_reply(item)))
                else:
                    await send.send(item)

    async with anyio.create_task_group() as group:
        group.start_soon(forward)
        try:
            yield receive
        finally:
            group.cancel_scope.cancel()
