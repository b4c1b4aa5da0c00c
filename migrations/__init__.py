"""Alembic migrations for the republish-processor database."""
