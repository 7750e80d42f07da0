"""The server: one ASGI app that owns all state (see design.md, "Parts and processes")."""
