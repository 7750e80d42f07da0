"""What workflow authors import. No SQL and no server code here (design.md)."""
