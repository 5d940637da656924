"""The GpuInstance controllers: launch, liveness, termination, garbage collection."""
