"""Pure decision functions: observed state and `now` in, intents out. No I/O."""
