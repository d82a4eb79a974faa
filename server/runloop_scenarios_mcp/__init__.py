"""runloop-scenarios-mcp: an MCP server to browse and safely edit Runloop scenarios."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runloop-scenarios-mcp")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
