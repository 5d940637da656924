"""Controllers: gather facts through adapters, call a decision, apply its intents."""
