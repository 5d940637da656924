"""The warmpool operator: Kopf handlers, pure decisions and adapters."""
