"""The warmpool studio: a FastAPI service and its web page."""
