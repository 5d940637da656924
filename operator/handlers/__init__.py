"""Kopf handlers: glue between Kubernetes events, decisions and adapters."""
