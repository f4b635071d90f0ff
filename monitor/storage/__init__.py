"""Persistence behind the Storage protocol; SQLite by default."""
