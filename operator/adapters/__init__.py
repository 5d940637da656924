"""Adapters: one module per external system, typed, with retries and clear errors."""
