"""The GenerationJob controllers: facts, slot ledger, wake loops, runner, outcomes, outputs."""
