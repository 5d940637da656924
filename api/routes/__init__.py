"""Thin route modules of the studio API."""
