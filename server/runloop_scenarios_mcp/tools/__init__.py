"""The MCP tool layer (the only layer that imports mcp, besides the transports): the published tools
(``catalog``), the server class (``server``), the call boundary (``calls``) and thin handlers (``read``,
``update``), wired by name in ``handlers``."""
