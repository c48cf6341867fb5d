"""The HTTP API (FastAPI, /v1): a thin face over the services."""
