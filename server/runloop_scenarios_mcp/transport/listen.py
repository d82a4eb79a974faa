"""Binding the HTTP listening sockets before anything is logged, so a taken port is one clear line, not a traceback.

The sockets are handed to uvicorn as they are: nothing else can take the port between the check and
the serving.
"""

from __future__ import annotations

import errno
import socket

from runloop_scenarios_mcp.errors import ConfigurationError


def bind_error_message(host: str, port: int, exc: OSError) -> str:
    """One line saying why ``host:port`` cannot be listened on, and what to do."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use on {host}; stop what listens there or pick another with --port"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied; pick a port above 1023 with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine; pick another with --host"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: {host!r} does not resolve ({exc.strerror}); pick another with --host"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` resolves to (as asyncio's create_server binds them).

    Raises ConfigurationError with :func:`bind_error_message` when one cannot be bound.
    """
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):  # dict.fromkeys: duplicates bound once
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                # POSIX: restart at once after a stop (TIME_WAIT); a port someone listens on still fails.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigurationError(bind_error_message(host, port, exc)) from None
    return sockets
