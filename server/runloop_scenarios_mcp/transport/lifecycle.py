"""Stopping on a signal: one SIGINT (Ctrl-C) or SIGTERM ends the server cleanly, exit code 0, no traceback.

Left alone, SIGINT surfaces as a KeyboardInterrupt traceback out of the event loop and SIGTERM kills
the process without cleanup. Here the first signal asks the transport to finish (``stop``: stdio ends
as if the client closed stdin, HTTP as uvicorn's graceful shutdown); a second one cancels whatever
is still running.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve_until_signal(serve: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
    """Run ``serve`` to its end; the first SIGINT or SIGTERM calls ``stop``, a second cancels ``serve``."""
    if sys.platform == "win32":  # pragma: no cover - no loop signal handlers there; the CLI catches Ctrl-C
        await serve()
        return
    async with anyio.create_task_group() as group:

        async def watch(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                task_status.started()
                stopping = False
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if stopping:
                        logger.warning("server_stop signal=%s again: cancelling what is still running", name)
                        group.cancel_scope.cancel()
                        return
                    logger.info("server_stop signal=%s", name)
                    stopping = True
                    stop()

        await group.start(watch)  # handlers are in place before the first request is read
        await serve()
        group.cancel_scope.cancel()
