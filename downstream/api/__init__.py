"""The REST API (FastAPI): tickets, customers, dead letters; tokens with roles."""
